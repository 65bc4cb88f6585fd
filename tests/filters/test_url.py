import multiprocessing
import socket
from pathlib import Path

import pytest

from mdr.filters import url as url_module
from mdr.filters.url import DATATROVE_WORD_LISTS, URLConfig, URLStage
from tests.filters.texts import reloaded, run

UT1_LISTS = {
    "adult/domains": "badsite.com\nsub.okay.org\n",
    "adult/urls": "example.org/bad/dir\nShop.example.net/Page\n",
    "phishing/domains": "# a comment\npaypa1-login.com\n",
    "gambling/domains": "casino.com\n",
}


@pytest.fixture
def ut1(tmp_path) -> URLConfig:
    """A UT1-shaped folder (`<category>/domains`, `<category>/urls`) and a config reading two of its categories."""
    for name, content in UT1_LISTS.items():
        path = tmp_path / "blacklists" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return URLConfig(
        blocklist_dir=str(tmp_path / "blacklists"),
        blocklist_categories=("adult", "phishing"),
        cache_dir=str(tmp_path / "cache"),
    )


def check(stage: URLStage, url: str | None):
    return run(stage, "<html>", **({"url": url} if url is not None else {}))


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://badsite.com/", "domain"),
        ("http://www.BadSite.com/any/page", "domain"),
        ("https://x.sub.okay.org/", "subdomain"),
        ("https://sub.okay.org/", "subdomain"),
        ("https://okay.org/", True),
        ("https://paypa1-login.com/", "domain"),
        ("https://casino.com/", True),  # gambling is not a selected category
        ("https://example.org/bad/dir", "url"),
        ("https://www.example.org/bad/dir/page.html?x=1#top", "url"),  # a listed folder covers what is under it
        ("https://example.org/bad", True),
        ("https://example.org/bad/directory", True),
        ("http://shop.example.net/page/", "url"),
        (None, "no_url"),
        ("", "no_url"),
    ],
)
def test_blocklist_rules(ut1, url, expected):
    assert check(URLStage(ut1), url)[0] == expected


def test_drop_detail_names_the_listed_entry(ut1):
    _, doc = check(URLStage(ut1), "https://a.sub.okay.org/")
    assert doc.metadata["drop_detail"] == "subdomain sub.okay.org is on the blocklist"


def test_extra_domains_and_urls(ut1):
    config = URLConfig(**{**ut1.__dict__, "extra_domains": ("Extra.com",), "extra_urls": ("http://site.org/x",)})
    stage = URLStage(config)
    assert check(stage, "https://www.extra.com/")[0] == "domain"
    assert check(stage, "https://site.org/x/y")[0] == "url"


def test_unknown_category_is_named(ut1):
    """Refused when the config is made (a recipe: before the run), not in the stage's first task."""
    with pytest.raises(ValueError, match="UT1 category 'arjel'.*found: adult, gambling, phishing"):
        URLConfig(**{**ut1.__dict__, "blocklist_categories": ("adult", "arjel")})


def test_curated_sources_are_excluded(ut1):
    stage = URLStage(ut1)
    for url in ("https://en.wikipedia.org/wiki/Paris", "https://math.stackexchange.com/q/1", "https://arxiv.org/abs/1"):
        result, doc = check(stage, url)
        assert result == "curated_source", url
    assert check(stage, "https://de.wikipedia.org/wiki/Paris")[0] is True
    assert check(stage, "https://notarxiv.org/")[0] is True
    assert doc.metadata["drop_detail"] == "curated_source arxiv.org is excluded"


def test_word_lists_are_datatroves(ut1):
    words = url_module._load_word_lists(None, None, None)
    assert {"porn", "xxx"} <= words.hard and {"sex", "webcam", "nude"} <= words.soft
    assert words.strict.search("2girls1cup")
    assert all(path.is_file() for path in DATATROVE_WORD_LISTS.values())


def test_hard_words_match_whole_words_only(ut1):
    stage = URLStage(ut1)
    result, doc = check(stage, "https://example.com/free-PORN-videos")
    assert result == "hard_word" and doc.metadata["drop_detail"] == "hard_word 'porn' in url"
    assert check(stage, "https://example.com/xxxtentacion-fans")[0] is True  # not a whole word, nor a subword


def test_soft_words_need_two_distinct(ut1):
    stage = URLStage(ut1)
    assert check(stage, "https://example.com/sex-education")[0] is True  # one soft word
    assert check(stage, "https://example.com/sex/sex-ed")[0] is True  # the same one twice
    result, doc = check(stage, "https://example.com/nude-webcam")
    assert result == "soft_words" and doc.metadata["drop_detail"] == "soft_words ['nude', 'webcam'] 2 >= 2"


def test_strict_subwords_ignore_dashes_and_dots_only(ut1):
    stage = URLStage(ut1)
    assert check(stage, "https://example.com/2-girls-1.cup")[0] == "strict_subword"
    assert check(stage, "https://example.com/2_girls_1_cup")[0] is True  # DCLM keeps `_`
    datatrove_like = URLStage(URLConfig(**{**ut1.__dict__, "strict_ignored": "non_alphanumeric"}))
    assert check(datatrove_like, "https://example.com/2_girls_1_cup")[0] == "strict_subword"  # deletes all


def test_fineweb_flavour_keeps_curated_sources():
    config = URLConfig.fineweb()
    assert config.curated_sources == () and config.strict_ignored == "non_alphanumeric"
    assert config.blocklist_categories == ("adult",)


def test_fineweb_recipe_filters_urls_as_fineweb_did():
    """The built-in fineweb recipe's URL stage is datatrove's URLFilter() (FineWeb's), not RefinedWeb's: its url: {}
    dropped Wikipedia and the other Pile sources (4 of the 531 dev pages kept by datatrove's FineWeb example)."""
    from mdr.pipeline.recipe import load_recipe

    (config,) = [stage.config for stage in load_recipe("fineweb").stages if stage.key == "url"]
    assert config == URLConfig.fineweb()
    stage = URLStage(config)
    assert check(stage, "https://en.wikipedia.org/wiki/Tide_pool")[0] is True


def test_first_use_is_offline(ut1, monkeypatch):
    """tldextract fetches the public suffix list on first use unless told not to; a caught failure would only cost
    seconds, so record every attempt to open a socket rather than rely on an exception escaping."""
    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    url_module._tld_extractor.cache_clear()
    url_module._load_blocklist.cache_clear()
    stage = URLStage(ut1)
    assert check(stage, "https://news.example.co.uk/story")[0] is True
    assert check(stage, "https://badsite.com/")[0] == "domain"
    assert attempts == []


def _build(config: URLConfig) -> int:
    url_module._load_blocklist.cache_clear()
    blocklist = url_module._load_blocklist(config.blocklist_dir, config.blocklist_categories, config.cache_dir)
    return len(blocklist.domains)


def test_concurrent_builds_do_not_race(tmp_path):
    folder = tmp_path / "blacklists" / "adult"
    folder.mkdir(parents=True)
    (folder / "domains").write_text("\n".join(f"site{i}.com" for i in range(200_000)))
    config = URLConfig(blocklist_dir=str(folder.parent), blocklist_categories=("adult",), cache_dir=str(tmp_path / "c"))
    with multiprocessing.get_context("fork").Pool(4) as pool:
        sizes = pool.map(_build, [config] * 4)
    assert sizes == [200_000] * 4
    built = list((tmp_path / "c" / "url_blocklist").iterdir())
    assert len(built) == 1 and not built[0].name.startswith(".")  # one list, no temporary folder left behind
    assert check(URLStage(config), "https://site199999.com/")[0] == "domain"


def test_datatroves_shipped_list():
    """The 4.6M-domain UT1 aggregate datatrove ships (hashed into ~/.cache/mdr on first use, ~5 s)."""
    stage = URLStage()
    assert check(stage, "https://www.pornhub.com/")[0] == "domain"
    assert check(stage, "https://0-secure-paypal.com/")[0] == "domain"
    assert check(stage, "https://example.com/recipes/bread")[0] is True
    assert len(url_module._load_blocklist(None, URLConfig().blocklist_categories, None).domains) > 4_500_000


def test_pickles_and_works_after_unpickling(ut1):
    stage = URLStage(ut1)
    check(stage, "https://okay.org/")
    assert check(reloaded(stage), "https://badsite.com/")[0] == "domain"
