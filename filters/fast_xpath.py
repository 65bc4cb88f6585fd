"""trafilatura's boilerplate XPaths evaluated in Python, with lxml's results, node for node.

trafilatura (2.x) finds boilerplate with XPaths such as `.//*[self::div or self::p][re:test(@class, 'nav|footer')]`.
lxml evaluates EXSLT `re:test` by calling back into Python once per visited element, and on real pages these paths
take about 60% of extraction time (benchmarks/RESULTS.md). The same tests written as one Python predicate per
element, over `iterdescendants(tags)`, run 2 to 3 times faster.

`compile_xpath(source)` translates the subset of XPath 1.0 that trafilatura.xpaths uses into such a function:

    path      := '(' union ')' ('[' NUMBER ']')? | './/' ('*' | NAME) ('[' expr ']')* ('[' NUMBER ']')?
    union     := path ('|' path)*
    expr      := or / and / not(expr) / ( expr ) / self::NAME / ATTRS / ATTRS = 'lit' / .//NAME
                 / contains(S, 'lit') / starts-with(S, 'lit') / re:test(S, 'lit')
    S         := ATTRS | translate(S, 'lit', 'lit') | 'lit'         ATTRS := @name ('|' @name)*

with XPath's rules: a node-set of attributes reads as the value of its first attribute in document (= source) order,
or "" when empty; `ATTRS = 'lit'` holds when any of them equals; `.//x[...][n]` picks the n-th match among the
children of each parent; `(...)[n]` the n-th of the whole set; unions come out in document order. Anything else
makes `compile_xpath` return None, and the patch leaves that XPath to lxml. A `re:test` remembers its answer for the
last 4,096 distinct strings (class names repeat across a page's elements and a site's pages): 12% less extraction
CPU on 368 real pages in both trafilatura modes, the same texts (benchmarks/RESULTS.md, issue 15). The generated
predicate is Python source built only from trafilatura's constant XPath strings, never from page content.
`mdr.patches.trafilatura` puts the compiled paths in trafilatura's lists. tests/filters/test_fast_xpath.py checks every
replaced path against lxml on real pages, and trafilatura's output with and without the patch.
"""

import functools
import itertools
import re
from collections.abc import Callable, Iterator

from lxml import etree

Element = etree._Element
_TOKEN = re.compile(
    r"""\s*(?:(?P<lit>'[^']*'|"[^"]*")|(?P<num>\d+)|(?P<op>\.//|::|!=|[()\[\]|,=@*])|(?P<name>[A-Za-z_][\w.-]*(?::[A-Za-z_][\w-]*)?))"""
)


class Unsupported(Exception):
    """The XPath uses something outside the subset: lxml keeps it."""


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens, position, source = [], 0, source.strip()
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            raise Unsupported(f"cannot read {source[position:position + 20]!r}")
        kind = match.lastgroup
        tokens.append((kind, match[kind]))
        position = match.end()
        while position < len(source) and source[position].isspace():
            position += 1
    return tokens


def _first_of(element: Element, names: tuple[str, ...], values: tuple[str | None, ...]) -> str:
    """String value of the node-set `@a|@b|...` (values: the attributes' values or None): the first present
    attribute in source order, else ""."""
    present = [(name, value) for name, value in zip(names, values) if value is not None]
    if len(present) <= 1:
        return present[0][1] if present else ""
    order = list(element.keys())
    return min(present, key=lambda pair: order.index(pair[0]))[1]


# Distinct attribute values remembered per pattern: a page repeats its class names on many elements, and pages of a
# site share them; trafilatura's longest patterns are alternations of ~60 words that re scans position by position.
_SEARCH_MEMORY = 4096


def _remembered_search(pattern: re.Pattern) -> Callable[[str], bool]:
    """`pattern.search(text) is not None`, remembered for the last _SEARCH_MEMORY distinct texts."""

    @functools.lru_cache(maxsize=_SEARCH_MEMORY)
    def search(text: str) -> bool:
        return pattern.search(text) is not None

    return search


class _Compiler:
    """Recursive descent over the tokens; expressions come out as Python source over the element `e`."""

    def __init__(self, source: str):
        self.tokens = _tokenize(source)
        self.position = 0
        self.constants: dict[str, object] = {"_first_of": _first_of}
        self.attributes: dict[str, str] = {}  # attribute name -> local variable of the generated predicate

    # -- token helpers
    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def kind_at(self, offset: int) -> str | None:
        token = self.peek(offset)
        return token[0] if token else None

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        token = self.peek()
        if token is None or (value is not None and token[1] != value) or (kind is not None and token[0] != kind):
            raise Unsupported(f"expected {value or kind}, found {token}")
        self.position += 1
        return token[1]

    def at(self, value: str) -> bool:
        token = self.peek()
        return token is not None and token[1] == value and token[0] != "lit"

    def attribute(self, name: str) -> str:
        """The predicate's local variable holding e.get(name): each attribute is read once per element."""
        return self.attributes.setdefault(name, f"a{len(self.attributes)}")

    def constant(self, value: object) -> str:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    # -- paths: functions context -> iterator over the selected elements, in document order
    def union(self) -> "Callable[[Element], Iterator]":
        paths = self._operands("|", self.path)
        if len(paths) == 1:
            return paths[0]
        tags = [getattr(path, "plain_tags", None) for path in paths]
        if None not in tags:  # .//a|.//b: one walk over both tags keeps document order
            return self._plain(tuple(tag for group in tags for tag in group))

        def union(context, paths=tuple(paths)):
            chosen = {element for path in paths for element in path(context)}
            if len(chosen) <= 1:
                return iter(chosen)
            return (element for element in context.iterdescendants() if element in chosen)

        return union

    def path(self) -> "Callable[[Element], Iterator]":
        if self.at("("):
            self.take("(")
            inner = self.union()
            self.take(")")
            index = self._position_predicate()
            if index is None:
                return inner
            return lambda context: itertools.islice(inner(context), index - 1, index)
        self.take(".//")
        tag = self.take("*") if self.at("*") else self.take(kind="name")
        predicates, self.attributes = [], {}
        while self.at("[") and self.kind_at(1) != "num":
            self.take("[")
            predicates.append(self.expr())
            self.take("]")
        index = self._position_predicate()
        return self._step(tag, predicates, index)

    def _position_predicate(self) -> int | None:
        if not (self.at("[") and self.kind_at(1) == "num"):
            return None
        self.take("[")
        index = int(self.take(kind="num"))
        self.take("]")
        if index < 1:
            raise Unsupported("position below 1")
        return index

    @staticmethod
    def _plain(tags: tuple[str, ...]):
        def plain(context):
            return context.iterdescendants(*tags)

        plain.plain_tags = tags
        return plain

    def _step(self, tag: str, predicates: list, index: int | None) -> "Callable[[Element], Iterator]":
        tags = (tag,) if tag != "*" else None
        if tags is None and predicates and predicates[0][0] == "tags":
            tags = tuple(predicates.pop(0)[1])  # a leading [self::a or self::b]: lxml filters the tags in C
        if tags and not predicates and index is None:
            return self._plain(tags)
        condition = " and ".join(f"({self.boolean(p)})" for p in predicates) or "True"
        reads = "".join(f"{{indent}}{var} = e.get({name!r})\n" for name, var in self.attributes.items())
        namespace = dict(self.constants)
        namespace["_select"] = select = tags or (etree.Element,)  # etree.Element: elements only, as `*`
        # noqa: S102 below: the source is built from trafilatura's constant XPaths only (the module's docstring)
        if index is None:  # the predicate inlined in the walk: no call per element (-1.2% of extraction's
            # instructions on 40 dev pages under callgrind, benchmarks/RESULTS.md issue 15)
            exec(f"def walk(context):\n    for e in context.iterdescendants(*_select):\n"  # noqa: S102
                 f"{reads.format(indent=' ' * 8)}        if {condition}:\n            yield e\n", namespace)
            return namespace["walk"]
        exec(f"def match(e):\n{reads.format(indent=' ' * 4)}    return {condition}\n", namespace)  # noqa: S102
        match = namespace["match"]

        def nth_per_parent(context):
            counts = {}
            for element in context.iterdescendants(*select):
                if match(element):
                    parent = element.getparent()
                    counts[parent] = counts.get(parent, 0) + 1
                    if counts[parent] == index:
                        yield element

        return nth_per_parent

    # -- expressions: (kind, value): bool and str are Python source, attrs and tags lists of names
    def _operands(self, operator: str, operand: Callable[[], tuple[str, object]]) -> list[tuple[str, object]]:
        """operand (operator operand)*"""
        terms = [operand()]
        while self.at(operator):
            self.take(operator)
            terms.append(operand())
        return terms

    def expr(self) -> tuple[str, object]:
        terms = self._operands("or", self.and_expr)
        if len(terms) == 1:
            return terms[0]
        if all(kind == "tags" for kind, _ in terms):
            return "tags", [tag for _, tags in terms for tag in tags]
        return "bool", " or ".join(f"({self.boolean(term)})" for term in terms)

    def and_expr(self) -> tuple[str, object]:
        terms = self._operands("and", self.comparison)
        if len(terms) == 1:
            return terms[0]
        return "bool", " and ".join(f"({self.boolean(term)})" for term in terms)

    def comparison(self) -> tuple[str, object]:
        left = self.primary()
        if not self.at("="):
            return left
        self.take("=")
        right = self.primary()
        if left[0] != "attrs" or right[0] != "str" or not right[1].startswith("_c"):
            raise Unsupported("only @attr = 'literal' comparisons")
        return "bool", " or ".join(f"{self.attribute(name)} == {right[1]}" for name in left[1])

    def primary(self) -> tuple[str, object]:
        kind, value = self.peek() or (None, None)
        if kind == "lit":
            self.take()
            return "str", self.constant(value[1:-1])
        if value == "(":
            self.take("(")
            inner = self.expr()
            self.take(")")
            return inner
        if value == "@":
            names = [self._attribute()]
            while self.at("|") and self.kind_at(1) == "op" and self.peek(1)[1] == "@":
                self.take("|")
                names.append(self._attribute())
            return "attrs", names
        if value == ".//":
            self.take(".//")
            tag = self.take(kind="name")
            return "bool", f"next(e.iterdescendants({tag!r}), None) is not None"
        if kind != "name":
            raise Unsupported(f"unexpected {value!r}")
        self.take()
        if value == "self" and self.at("::"):
            self.take("::")
            return "tags", [self.take(kind="name")]
        if not self.at("("):
            raise Unsupported(f"child element test {value!r}")
        self.take("(")
        arguments = [self.expr()]
        while self.at(","):
            self.take(",")
            arguments.append(self.expr())
        self.take(")")
        return self._function(value, arguments)

    def _attribute(self) -> str:
        self.take("@")
        return self.take(kind="name")

    def _function(self, name: str, arguments: list[tuple[str, object]]) -> tuple[str, object]:
        if name == "not" and len(arguments) == 1:
            return "bool", f"not ({self.boolean(arguments[0])})"
        if name in ("contains", "starts-with") and len(arguments) == 2:
            needle = self._literal(arguments[1])
            literal = self.constant(needle)
            if name == "contains":
                return "bool", self._test(arguments[0], lambda text: f"{literal} in {text}", needle != "")
            return "bool", self._test(arguments[0], lambda text: f"{text}.startswith({literal})", needle != "")
        if name == "translate" and len(arguments) == 3:
            source, old, new = self.string(arguments[0]), self._literal(arguments[1]), self._literal(arguments[2])
            table = {ord(char): (new[i] if i < len(new) else None) for i, char in reversed(list(enumerate(old)))}
            return "str", f"{source}.translate({self.constant(table)})"
        if name == "re:test" and len(arguments) in (2, 3):
            # lxml: re.compile(pattern, re.UNICODE | (re.I if "i" in flags)).search(string) is not None
            flags = self._literal(arguments[2]) if len(arguments) == 3 else ""
            if set(flags) - {"i", "g"}:
                raise Unsupported(f"re:test flags {flags!r}")
            pattern = re.compile(self._literal(arguments[1]), re.UNICODE | (re.IGNORECASE if "i" in flags else 0))
            test = self.constant(_remembered_search(pattern))
            return "bool", self._test(arguments[0], lambda text: f"{test}({text})", not pattern.search(""))
        raise Unsupported(f"function {name} with {len(arguments)} arguments")

    def _literal(self, argument: tuple[str, object]) -> str:
        kind, value = argument
        if kind != "str" or not isinstance(value, str) or value not in self.constants:
            raise Unsupported("a literal string was expected")
        return self.constants[value]

    def _test(self, term: tuple[str, object], test: Callable[[str], str], false_on_empty: bool) -> str:
        """test(expression of the term's string value); when the test fails on "", elements without the
        attributes are turned away before the string is built."""
        if term[0] != "attrs" or not false_on_empty:
            return test(self.string(term))
        variables = [self.attribute(name) for name in term[1]]
        if len(variables) == 1:
            return f"({variables[0]} is not None and {test(variables[0])})"
        present = " or ".join(f"{variable} is not None" for variable in variables)
        return f"(({present}) and {test(self.string(term))})"

    def string(self, term: tuple[str, object]) -> str:
        kind, value = term
        if kind == "str":
            return value
        if kind == "attrs":
            variables = [self.attribute(name) for name in value]
            if len(value) == 1:
                return f"({variables[0]} or '')"
            first_of = f"_first_of(e, {tuple(value)!r}, ({', '.join(variables)},))"
            if len(value) == 2:  # the usual case, one of them absent, without a call
                a, b = variables
                return f"(({b} or '') if {a} is None else {a} if {b} is None else {first_of})"
            return first_of
        raise Unsupported(f"string value of {kind}")

    def boolean(self, term: tuple[str, object]) -> str:
        kind, value = term
        if kind == "bool":
            return value
        if kind == "tags":
            return " or ".join(f"e.tag == {tag!r}" for tag in value)
        if kind == "attrs":
            return " or ".join(f"{self.attribute(name)} is not None" for name in value)
        if kind == "str":
            return f"bool({value})"
        raise Unsupported(f"boolean value of {kind}")


class CompiledXPath:
    """Callable like lxml's XPath on an element; anything else (a tree, keyword variables) goes to lxml."""

    def __init__(self, xpath: etree.XPath, evaluate: Callable[[Element], Iterator]):
        self.xpath = xpath
        self.path = xpath.path
        self.evaluate = evaluate

    def __call__(self, context, **variables):
        if variables or not isinstance(context, Element):
            return self.xpath(context, **variables)
        return list(self.evaluate(context))

    def __repr__(self):
        return f"CompiledXPath({self.path.strip()!r})"


def compile_xpath(source: str) -> Callable[[Element], Iterator] | None:
    """A function yielding lxml's result for `source` evaluated on an element, or None outside the subset."""
    try:
        compiler = _Compiler(source)
        evaluate = compiler.union()
        if compiler.peek() is not None:
            raise Unsupported(f"trailing {compiler.peek()}")
        return evaluate
    except (Unsupported, re.error, IndexError):
        return None


def compiled(xpath: etree.XPath) -> "CompiledXPath | etree.XPath":
    evaluate = compile_xpath(xpath.path)
    return xpath if evaluate is None else CompiledXPath(xpath, evaluate)
