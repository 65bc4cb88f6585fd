"""Write the small sample WARCs in data_samples/ and the fate every planted page is expected to meet.

Every page is written for this project (no third-party text) and planted to exercise one stage of the pipeline:
good articles that survive it all, pages each filter must drop, records the reader must skip, and duplicates
for the three dedup methods. `expected.json` maps each URL to its fate; README.md explains the table.

The output is deterministic: fixed dates, record ids from uuid5, and gzip members with mtime 0, so
`python data_samples/make_samples.py --out DIR` rewrites byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HERE = Path(__file__).resolve().parent
FILE_NAMES = ("sample-00000.warc.gz", "sample-00001.warc.gz", "sample-00002.warc.gz")
RECORD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/mdr/data_samples")
CRAWL_START = datetime(2024, 3, 4, 9, 0, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------------------------------
# Text written for these samples


TIDE_POOLS = [
    "Twice a day the sea pulls back from the rocky shore and leaves behind a scattering of small basins. To a "
    "passing walker they look like puddles, but each one is a crowded neighbourhood with its own rules, and an "
    "hour spent crouching beside a single pool teaches more about the coast than a day of striding past them.",
    "The animals that live here have to cope with conditions that change by the minute. When the tide is out the "
    "water warms in the sun, loses oxygen and grows saltier as it evaporates. A sudden shower can do the opposite "
    "and flood the surface with fresh water. Anemones deal with this by pulling in their tentacles and closing into "
    "tight jelly-like knobs, while limpets clamp down on the rock and seal a little water beneath their shells.",
    "Hermit crabs are the easiest residents to spot because they never seem to stop moving. They borrow the empty "
    "shells of sea snails and trade up as they grow, and if you watch long enough you may see two crabs inspect "
    "the same shell, tap it, and argue over it. Periwinkles graze on the thin film of algae that coats every "
    "surface, and the pale tracks they leave behind are the marks of thousands of tiny teeth.",
    "Higher up the shore, where the water only reaches at the top of the tide, the pools hold fewer species but "
    "tougher ones. Lower down, close to the line of the lowest spring tides, the pools are deeper and cooler, and "
    "that is where starfish, sea urchins and the occasional small fish such as a blenny wait for the sea to return.",
    "A few habits keep both visitors and animals safe. Step only on bare rock, since seaweed hides holes and is "
    "slippery. Turn stones over gently and always put them back the way they were, because the underside is home "
    "to creatures that cannot survive in the light. Never carry animals away from the water; even a few minutes in "
    "a warm hand or a bucket in the sun can be enough to kill a starfish.",
    "Finally, keep an eye on the time. Tide tables are published for every stretch of coast, and the sea comes back "
    "faster than most people expect. The best pools are often on ledges that are cut off first, so plan to start "
    "walking back well before the turn.",
]

SOURDOUGH = [
    "A sourdough starter is nothing more than flour and water that has been left long enough for wild yeast and "
    "bacteria to settle in. It sounds too simple to work, and for the first few days it often looks as if it will "
    "not, but patience is the main ingredient.",
    "Begin with a clean glass jar, wholemeal flour and water at room temperature. Mix equal weights of each, about "
    "fifty grams, into a thick paste, cover the jar loosely and leave it somewhere warm but out of direct sunlight. "
    "Wholemeal flour helps at the start because the bran carries more of the microbes you are hoping to grow.",
    "For the next week, feed the starter once a day. Throw away all but a spoonful of the old mixture, then add "
    "fresh flour and water in the same amounts as before. Discarding feels wasteful, but without it the jar fills "
    "quickly and the young culture is swamped by stale, acidic paste.",
    "Around the third day the mixture usually bubbles enthusiastically and smells strongly of cheese or nail "
    "varnish. This early burst comes from bacteria that do not last, and it is common for the starter to go quiet "
    "afterwards. Many beginners give up at this point. Keep feeding: the quiet spell means the jar is becoming too "
    "acidic for the early arrivals and the yeast is about to take over.",
    "A starter is ready when it reliably doubles in volume within six to eight hours of a feed, has a domed, "
    "bubbly surface and smells pleasantly sour, a little like yoghurt. Drop a small spoonful into a glass of water; "
    "if it floats, it is full of gas and strong enough to raise a loaf.",
    "Once it is established the culture is remarkably forgiving. Kept in the fridge it needs feeding only once a "
    "week, and even a starter that has been forgotten for a month can usually be revived with two or three days "
    "of regular meals. Some bakers keep the same jar going for decades and pass portions on to friends.",
]

PUNCTURE = [
    "A flat tyre is the most common problem any cyclist will face, and fixing one by the roadside takes about "
    "fifteen minutes once you have done it a couple of times. All you need is a pair of tyre levers, a spare inner "
    "tube or a patch kit, and a pump that fits your valves.",
    "Start by taking the wheel out of the frame. On most modern bikes this means opening a quick release lever or "
    "unscrewing a thru-axle. If it is the back wheel, shift into the smallest sprocket first so the chain is slack "
    "and the wheel drops out easily.",
    "Let out any remaining air, then push the bead of the tyre towards the middle of the rim all the way round. "
    "This gives you the slack needed to hook a tyre lever under the bead opposite the valve and lever it over the "
    "rim. Clip the first lever to a spoke, insert the second a hand's width along, and slide it round until one "
    "side of the tyre is free.",
    "Before fitting a new tube, find out what caused the puncture. Run your fingers carefully around the inside of "
    "the tyre to feel for a thorn, a sliver of glass or a sharp stone. If you skip this step, the object that let "
    "the air out of the first tube will simply do the same to the second a mile down the road.",
    "Put a little air into the new tube so it holds its shape, push the valve through the hole in the rim and tuck "
    "the tube inside the tyre. Then work the bead back onto the rim with your thumbs, starting at the valve and "
    "finishing opposite it. The last section is always tight; try to avoid using a lever here, because it is easy "
    "to pinch the new tube against the rim.",
    "Inflate the tyre slowly and check that the bead sits evenly on both sides before pumping it up to full "
    "pressure. Refit the wheel, make sure the brakes are closed again, and spin it once to check that nothing rubs. "
    "The punctured tube can be patched at home and carried as your next spare.",
]

LIGHTHOUSE = [
    "For nearly two centuries the lights along our coast were kept burning by people rather than machines. The "
    "keepers lived in small stone cottages at the foot of the towers, often with their families, and their days "
    "followed a routine that hardly changed from one generation to the next.",
    "The most important task was keeping the lamp alight from sunset to sunrise. Early lights burned whale oil and "
    "later paraffin, and the wicks had to be trimmed through the night so that they did not smoke and blacken the "
    "glass. Keepers worked in watches, and the log books that survive record every change of shift, every passing "
    "ship and every night of fog in a neat, careful hand.",
    "Daylight hours were spent cleaning. Salt spray and soot dulled the great lenses, which were made of hundreds of "
    "pieces of polished glass, and they were wiped down every morning with soft cloths. Curtains were drawn around "
    "the lantern room during the day, not for privacy but because the lenses could focus sunlight strongly enough to "
    "start a fire.",
    "Life on the offshore rocks was harder still. Some towers stood on reefs so small that there was no room for a "
    "garden or even a walk, and relief boats could be delayed for weeks by bad weather. Keepers there were usually "
    "men serving in rotation, and letters home describe the strange mixture of boredom and danger that filled their "
    "months at sea.",
    "Automation arrived gradually during the twentieth century. Electric lamps, clockwork and finally remote "
    "monitoring removed the need for anyone to climb the stairs each evening, and the last keepers in this region "
    "left their posts in the nineteen nineties. Several of the cottages are now small museums, where visitors can "
    "see the brass fittings, the oil stores and the log books that tell the story of a vanished job.",
]

BEES = [
    "My first year of keeping bees began with a phone call from a neighbour who had a swarm hanging from her apple "
    "tree. I had read two books, attended a short course and bought a hive, but I had never handled a living colony. "
    "Looking back, that swarm was the gentlest introduction I could have asked for.",
    "Swarming bees are full of honey and have no home to defend, so they are usually calm. A firm shake of the branch "
    "dropped most of the cluster into a cardboard box, and by evening the stragglers had followed the scent of their "
    "queen inside. I carried the box home and poured the bees onto a sheet leading up to the hive entrance, where "
    "they marched in like a crowd leaving a stadium.",
    "The weeks that followed were a lesson in restraint. Every beginner wants to open the hive constantly, but each "
    "inspection disturbs the colony and chills the brood. I settled on looking once a week, checking that there were "
    "eggs, that the queen had space to lay and that the bees were building comb in straight lines.",
    "By midsummer the colony had grown from a few thousand bees to tens of thousands, and I added a second box so "
    "they had room to store honey. The sound of a strong hive on a warm evening, a low steady hum, became one of my "
    "favourite things about the garden.",
    "I took only a small harvest that first autumn, leaving most of the honey for the bees to eat over the winter. "
    "The jars I did fill tasted of lime trees and blackberry flowers, and they disappeared quickly among friends "
    "and family. The real reward, though, was seeing the colony fly strongly the following spring, a sign that I had "
    "not done too much harm while learning.",
]

COMPOST = [
    "Around a third of what most households throw away could be turned into compost instead. Making it at home is "
    "cheap, reduces the weight of the bin, and produces a dark, crumbly material that improves almost any soil.",
    "The basic idea is to give microbes a balanced diet. Green materials such as vegetable peelings, coffee grounds "
    "and fresh grass cuttings are rich in nitrogen and rot quickly. Brown materials such as dry leaves, shredded "
    "cardboard and straw are rich in carbon and break down slowly. A heap that is mostly green turns slimy and smells, "
    "while one that is mostly brown barely changes for months. Aim for roughly equal volumes of each.",
    "Air and moisture matter just as much. The organisms that do the work need oxygen, so avoid packing the heap "
    "down, and turn it with a fork every few weeks if you can. The contents should feel like a wrung out sponge: "
    "damp, but not dripping. In a dry summer a watering can helps; in a wet winter a lid or an old piece of carpet "
    "keeps the rain off.",
    "Some things are best left out. Meat, fish and dairy attract rats, and cooked food can do the same. Diseased "
    "plants and the roots of persistent weeds may survive a cool heap and spread back into the garden. Glossy "
    "magazines and anything plastic will never break down, however long you wait.",
    "Depending on the season, compost can be ready in anything from three months to a year. It is finished when "
    "it smells of a forest floor and you can no longer recognise what went in. Spread it on beds in spring, mix "
    "it into planting holes, or use it as a mulch around shrubs, and the garden will repay the effort.",
]

RAINBOWS = [
    "A rainbow appears when sunlight shines on a curtain of falling rain while the sun is behind you. Each raindrop "
    "acts like a tiny prism. Light enters the front of the drop, bends as it passes from air into water, reflects "
    "off the back of the drop and bends again as it leaves. Because different colours bend by slightly different "
    "amounts, white sunlight is spread out into a band of colour.",
    "The reason the bow is curved comes from geometry rather than from anything special about the rain. For a "
    "single reflection inside a drop, the light that emerges is concentrated at an angle of about forty two degrees "
    "from the point directly opposite the sun. Every drop that sits at that angle from your line of sight sends you "
    "a flash of colour, and the set of all such directions forms a circle around the point opposite the sun.",
    "On flat ground you normally see only the upper part of that circle, because the lower part would need "
    "raindrops below the horizon. From an aircraft, or standing on a cliff with spray below, it is possible to see "
    "a complete ring.",
    "Sometimes a second, fainter bow appears outside the first, with its colours in reverse order. It is produced "
    "by light that reflects twice inside each drop before escaping, which sends it out at a wider angle and loses "
    "more of its brightness along the way. The sky between the two bows often looks noticeably darker than the sky "
    "elsewhere, an effect named after the Greek philosopher who first described it.",
    "One consequence of all this is that no two people see exactly the same rainbow. Each observer is receiving "
    "light from a different set of drops, so your rainbow moves with you, and you can never walk to its end.",
]

CHESS = [
    "Beginners often think that they must memorise long sequences of opening moves before they can play properly. "
    "In practice a handful of simple principles will carry you through the first stage of almost any game, and "
    "understanding them matters far more than remembering names.",
    "The first principle is to fight for the centre. The four squares in the middle of the board are the most "
    "valuable real estate in chess, because pieces placed there control more of the board. Moving one or two "
    "central pawns forward early stakes a claim and opens lines for your bishops and queen.",
    "The second is to develop your pieces quickly. Knights and bishops do nothing on their starting squares, so bring "
    "them out towards the centre, ideally with each move making a threat or preparing one. A useful rule of thumb is "
    "to avoid moving the same piece twice in the opening unless you have a good reason.",
    "The third is to keep your king safe, which usually means castling within the first ten or so moves. Castling "
    "tucks the king behind a wall of pawns and connects your rooks so they can defend each other. Players who leave "
    "their king in the middle for too long often find it attacked from several directions at once.",
    "Finally, be careful with the queen. It is tempting to bring her out early and chase enemy pieces around, but she "
    "is easily harassed by minor pieces, and every move spent rescuing her is a move your opponent spends developing. "
    "Follow these ideas, review your games afterwards, and the named openings will start to make sense on their own.",
]

HOUSEPLANTS = [
    "Winter is the season when most houseplants are lost, and the cause is usually kindness rather than neglect. "
    "Shorter days mean less light, and with less light plants grow slowly and use far less water than they did in "
    "summer.",
    "The most common mistake is watering on a fixed schedule. Before reaching for the watering can, push a finger "
    "into the compost up to the second knuckle. If it feels damp, wait a few more days. Roots sitting in cold, "
    "soggy compost cannot breathe, and they begin to rot long before any sign of trouble shows on the leaves.",
    "Light is the other limiting factor. Move plants closer to the brightest windows, and wipe dust from broad leaves "
    "with a damp cloth so that they can make the most of what light there is. Turn pots a quarter turn every week so "
    "that growth stays even rather than leaning towards the glass.",
    "Central heating creates a dry atmosphere that tropical plants dislike. Grouping pots together raises the "
    "humidity around them, and standing them on a tray of damp pebbles helps further. Keep plants away from "
    "radiators and from cold draughts near doors, since sudden changes in temperature cause leaves to yellow and drop.",
    "Hold off on feeding and repotting until spring. Fertiliser given to a plant that is barely growing simply "
    "builds up in the compost, and disturbing the roots is best done when the plant has the energy to recover. With "
    "a little restraint, your collection will come through to the longer days in good shape.",
]

EMERGENCY_FUND = [
    "An emergency fund is money set aside for the unexpected: a broken boiler, a car repair, or a few months "
    "between jobs. Without one, a single bad week can push a household into expensive borrowing that takes years "
    "to repay.",
    "Financial advisers commonly suggest keeping enough to cover three to six months of essential spending. That "
    "target can feel out of reach, so it helps to start smaller. A first goal of one month of rent and bills, or "
    "even a round figure such as five hundred pounds, is enough to absorb many everyday shocks.",
    "The easiest way to build the fund is to make saving automatic. Set up a standing order that moves a fixed "
    "amount into a separate account on the day your wages arrive, before there is any chance to spend it. Keeping "
    "the money in a different account, ideally at a different bank, adds a small barrier that discourages dipping "
    "into it for treats.",
    "Where to keep it matters less than people think. The fund should be easy to reach within a day or two and "
    "should not lose value when markets fall, so an ordinary savings account paying reasonable interest is usually "
    "the right home. Investments that might be worth less at the moment you need them defeat the purpose.",
    "Finally, decide in advance what counts as an emergency. A sale on a new television is not one. When you do "
    "use the fund, treat rebuilding it as a priority, and you will find that the next surprise causes far less "
    "worry than the last.",
]

HEADLAND_LOOP = [
    "The headland loop is a circular walk of about eleven kilometres that starts and finishes at the harbour car "
    "park. It takes most people four hours at a relaxed pace, with plenty of time for stops, and it offers the "
    "finest sea views anywhere on this part of the coast.",
    "Leave the car park by the slipway and follow the lane uphill past the lifeboat station. After the last house "
    "the lane becomes a grassy track that climbs steadily between gorse bushes. This is the steepest section of the "
    "whole route, so take it slowly and enjoy the view back over the harbour roofs.",
    "At the top of the climb a wooden gate leads onto open downland. Keep the fence on your right and head towards "
    "the old coastguard lookout, a small white building that is visible for most of the way. On clear days you can "
    "pick out the island lighthouse on the horizon from here.",
    "Beyond the lookout the path swings west and runs close to the cliff edge for nearly two kilometres. The ground "
    "is level and firm, but the drop is sheer in places, so keep dogs on leads and children close. In early summer "
    "the cliff tops are covered in sea pinks and the ledges below are busy with nesting guillemots.",
    "Look out for a stone bench dedicated to a local fisherman. It marks the best place on the walk to stop for "
    "lunch, sheltered from the prevailing wind by a low bank and looking straight down into a cove where seals "
    "often haul out on the rocks at low tide.",
    "From the bench continue along the cliff path until it drops into a narrow valley with a stream at the bottom. "
    "Stepping stones cross the water, but after heavy rain they can be submerged; a footbridge a short way upstream "
    "offers a dry alternative, adding only a few minutes to the route.",
    "Climb out of the valley on the far side and take the signed footpath inland across two fields. Farm animals "
    "graze here for much of the year, so close every gate behind you and give cows with young calves a wide berth.",
    "The path joins a quiet road beside a small chapel. Turn left and follow the road for about a kilometre, then "
    "take the bridleway on the right, which descends through an oak wood. The trees are stunted and twisted by the "
    "salt wind, and the wood is carpeted with bluebells in May.",
    "At the bottom of the wood the bridleway meets the estuary. Turn left along the shore path, which is muddy in "
    "winter but passes some of the best birdwatching spots in the county. Curlews, redshanks and little egrets feed "
    "on the mudflats as the tide goes out.",
    "The shore path brings you back to the harbour beside the fish market. There are cafes and a pub overlooking "
    "the boats, and on summer evenings the quay fills with people eating chips on the harbour wall and watching the "
    "last ferry come in.",
]
HEADLAND_LOOP_NEAR_DUPLICATE = HEADLAND_LOOP[:5] + HEADLAND_LOOP[6:]  # one paragraph in ten removed

LENTIL_SOUP = [
    "This is the soup I make most often in winter: cheap, filling and ready in under an hour from ingredients that "
    "keep well in the cupboard. It serves four generously and tastes even better the next day.",
    "Warm two tablespoons of olive oil in a large pan over a medium heat. Add one chopped onion, two diced carrots "
    "and two sticks of celery, and cook gently for ten minutes, stirring now and then, until the vegetables are soft "
    "and just beginning to colour.",
    "Stir in two crushed cloves of garlic, a teaspoon of ground cumin and half a teaspoon of smoked paprika. Cook for "
    "one more minute, until the spices smell fragrant, then add two hundred grams of red lentils and rinse them "
    "briefly in the pan with a splash of water.",
    "Pour in a tin of chopped tomatoes and a litre and a quarter of vegetable stock. Bring everything to the boil, "
    "then lower the heat, cover and simmer for about twenty five minutes, until the lentils have collapsed and the "
    "soup has thickened.",
    "Blend half of the soup until smooth and stir it back into the pan, which gives a creamy body while keeping some "
    "texture. Season with salt, pepper and the juice of half a lemon, adding a little more water if it seems too "
    "thick.",
    "Serve in warm bowls with a spoonful of yoghurt, a scattering of chopped parsley and thick slices of bread. Any "
    "leftovers will keep in the fridge for three days or in the freezer for a couple of months.",
]

GAZETTE_EDITORS_NOTE = (
    "The Riverton Gazette is an independent, reader-funded newspaper that has covered the town and the surrounding "
    "villages since nineteen twelve. Our reporters attend every council meeting, court hearing and planning "
    "inquiry so that residents know what is being decided in their name. We do not put our journalism behind a "
    "paywall, because we believe local news should be available to everyone, whatever their income. If you value "
    "this reporting and are able to help, a small monthly contribution from readers like you pays for another "
    "reporter on the streets of Riverton and keeps the presses running for the next hundred years."
)

LIBRARY_VOTE = [
    "Riverton's long-awaited new library moved a step closer on Tuesday evening, when the town council voted by "
    "nine to three to approve plans for a two-storey building on the site of the old bus depot.",
    "The design includes a children's wing with its own garden, a study area that will stay open until ten at night "
    "during exam season, and a ground floor cafe run by a local charity that trains young people for work in "
    "hospitality. Solar panels on the roof are expected to cover around half of the building's electricity needs.",
    "Councillor Maria Okafor, who chairs the culture committee, told the meeting that the current library, housed "
    "in a converted shop since the nineteen seventies, was too small, too cold in winter and impossible for "
    "wheelchair users to reach on its upper floor. Opponents did not dispute the need for a new building but argued "
    "that the cost, estimated at just over six million pounds, should have been shared with the county.",
    "Construction is due to begin in the autumn, and the council hopes the doors will open before the end of next "
    "year. Residents can view the plans at the town hall until the end of the month.",
]

BRIDGE_REPAIRS = [
    "Drivers who use the old stone bridge over the River Wend face three months of disruption from next Monday, "
    "when engineers begin the first major repairs to the structure in more than forty years.",
    "An inspection last spring found that water had been seeping into the masonry through cracks in the road "
    "surface, loosening the mortar in two of the five arches. The work will involve stripping back the carriageway, "
    "laying a waterproof membrane and repointing the arches from a floating platform moored beneath them.",
    "The bridge will be reduced to a single lane controlled by temporary traffic lights for the duration of the "
    "project, and it will close completely on two weekends in May. Buses will continue to cross, although the "
    "operator has warned of delays at peak times. Pedestrians and cyclists will be able to use a protected walkway "
    "on the downstream side throughout.",
    "Local shopkeepers on Bridge Street said they were worried about losing trade, and the council has promised "
    "signs directing visitors to the town centre car parks. A spokesperson said the repairs could not be delayed "
    "any further without risking a much longer closure in the future.",
]

SCHOOL_GARDEN = [
    "Pupils at Hollins Lane Primary School have turned a neglected corner of their playground into a thriving "
    "vegetable garden, and this week they sold their first harvest to parents at the school gate.",
    "The project began two years ago when a group of older pupils asked the head teacher whether they could grow "
    "food for the school kitchen. With help from a retired gardener who lives nearby, they built raised beds from "
    "reclaimed scaffolding boards, filled them with compost donated by the council and planted potatoes, beans, "
    "courgettes and a row of sunflowers that now towers over the fence.",
    "Teachers say the garden has found its way into almost every subject. Younger children measure the growth of "
    "the bean plants in mathematics lessons, while the oldest class wrote and printed the price labels for the "
    "market stall. The money raised, a little over two hundred pounds, will pay for fruit trees along the school's "
    "southern boundary.",
    "One pupil, aged ten, said that she had never eaten a raw pea before the garden started and now grew them at "
    "home as well. The school hopes to open the garden to families on Saturday mornings over the summer holidays.",
]

RIVER_FESTIVAL = [
    "Thousands of people lined the banks of the River Wend on Sunday for the return of the Riverton river festival, "
    "which had not been held for five years after the organising committee ran out of volunteers.",
    "The day began with a procession of decorated boats, led by the town's rowing club in a restored wooden gig, "
    "and continued with raft races in which teams from local businesses paddled homemade craft over a short course "
    "between the two bridges. The winning raft, built from plastic barrels and an old door, belonged to the staff of "
    "a garden centre, who completed the course despite losing a paddle halfway.",
    "On the meadow beside the river, stalls sold food from a dozen countries, and a stage hosted brass bands, school "
    "choirs and a folk group who performed songs about the river written by residents. Volunteers from the wildlife "
    "trust ran pond dipping sessions for children, who found water beetles, freshwater shrimps and a small pike.",
    "The new festival committee, formed last year by a group of parents, said it was delighted by the turnout and "
    "was already planning next year's event. It is looking for more volunteers to help with stewarding and clearing "
    "up afterwards.",
]

MARKETS_WEEK_ONE = [
    "Trading at Riverton's Saturday market was brisk this week as the first warm weekend of spring brought shoppers "
    "out in large numbers. Stallholders reported their best takings since before Christmas.",
    "Fruit and vegetable prices were steady, although the cold start to the year means that home grown produce is "
    "still scarce. Forced rhubarb from the north was the star of the greengrocers' tables, selling at around two "
    "pounds a bunch, while the first asparagus is not expected for another month.",
    "At the livestock sale on the edge of town, prices for store lambs rose slightly on the previous week, with "
    "farmers keen to buy before grass growth picks up. Auctioneers said the numbers forward were lower than usual "
    "after a difficult lambing season on the hill farms.",
    "The craft hall was busy with Mother's Day shoppers looking for cards, candles and handmade jewellery. Several "
    "stallholders said the return of the covered market roof, repaired over the winter, had made a noticeable "
    "difference to how long people stayed and browsed.",
    "Next week sees the return of the monthly plant fair, when nurseries from across the valley sell seedlings, "
    "fruit bushes and hardy perennials from the car park behind the corn exchange. Organisers advise arriving early, "
    "as the most popular tomato and chilli plants usually sell out within the first hour.",
]

MARKETS_WEEK_TWO = [
    "Heavy rain kept many people at home on Saturday, and stallholders at Riverton's weekly market described it as "
    "one of the quietest mornings of the year, with several traders packing up before lunchtime.",
    "Those who did brave the weather found good bargains on cheese and bread, as sellers cut prices rather than "
    "carry stock home. The new fishmonger, who started trading last month with catches landed at the harbour the "
    "same morning, said he had sold out of mackerel despite the conditions.",
    "The livestock sale was postponed because the field used for parking was waterlogged. The auctioneers expect to "
    "hold a combined sale next week, which could see twice the usual number of animals in the pens.",
    "Market managers are asking shoppers for their views on extending the market into the evening during the summer "
    "months. A short survey is available at the information stand and in the library, and the results will be "
    "discussed at the next meeting of the town's business forum.",
    "Traders are hoping for kinder weather next Saturday, when a visiting group of cheesemakers from the west "
    "country will join the regular stalls for the first time. They will be offering tastings of soft and hard "
    "cheeses made from the milk of their own herds, along with advice on keeping cheese at its best at home.",
]

APPLE_CRUMBLE = [
    "Apple crumble is the pudding I learned to make before anything else, standing on a chair next to my "
    "grandmother. It is forgiving, quick and almost impossible to ruin, which makes it perfect for a Sunday "
    "afternoon when the oven is already warm from lunch.",
    "Heat the oven to one hundred and eighty degrees. Peel, core and slice one kilogram of cooking apples, or a mix "
    "of cooking and eating apples if you prefer a sweeter filling with more texture. Toss the slices with two "
    "tablespoons of sugar, a pinch of cinnamon and a squeeze of lemon, then spread them in a deep baking dish.",
    "For the topping, rub one hundred grams of cold butter into two hundred grams of plain flour with your "
    "fingertips until the mixture looks like rough breadcrumbs. Stir in one hundred grams of demerara sugar and a "
    "handful of rolled oats, which add a pleasing crunch.",
    "Scatter the crumble loosely over the fruit without pressing it down, so that the juices can bubble up around "
    "the edges. Bake for forty minutes, until the top is golden and the fruit is soft when tested with a knife.",
    "Advertisement",
    "Let the crumble stand for ten minutes before serving, because the filling is extremely hot straight from the "
    "oven. Custard is traditional, but cold cream or vanilla ice cream are just as good. Leftovers can be reheated, "
    "though in our house there rarely are any.",
    "24 likes",
    "Sign in to save this recipe to your collection.",
]

FERRY_TIMETABLE_WITH_BOILERPLATE = [
    "BREAKING NEWS FROM THE WATERFRONT",
    "The island ferry will run a reduced timetable for the next fortnight while one of the two vessels is in dry "
    "dock for its annual inspection, the operating company announced on Thursday.",
    "128 likes",
    "45 comments",
    "Share",
    "From Monday, sailings will leave the harbour every two hours instead of hourly, with the first departure at "
    "seven in the morning and the last return crossing at eight in the evening. Vehicle bookings are strongly "
    "recommended, as space on the remaining boat will be limited.",
    "SUBSCRIBE NOW FOR DAILY HARBOUR UPDATES",
    "Advertisement",
    "Residents of the island will still be able to travel on the early school and work sailings, which have been "
    "kept in the timetable. The company apologised for the disruption and said the inspection could not be moved.",
    "1,204 views",
    "Tweet",
    "Sponsored",
    "READ THE FULL TIMETABLE IN OUR APP",
]

# trafilatura drops a paragraph equal to the one before it, so the repeats are interleaved with other lines.
REPETITIVE = [
    "Welcome to the Harbour Stores clearance event, where every item must go before the end of the month.",
    "Order today and get free delivery on every order over twenty pounds.",
    "All garden furniture is reduced by half while stocks last.",
    "Order today and get free delivery on every order over twenty pounds.",
    "Outdoor lights and lanterns are now reduced by a third.",
    "Order today and get free delivery on every order over twenty pounds.",
    "Picnic sets and cool boxes are on sale from ten pounds.",
    "Order today and get free delivery on every order over twenty pounds.",
    "Every pair of wellington boots is reduced to clear.",
    "Order today and get free delivery on every order over twenty pounds.",
    "Visit the shop on the quay or call us during opening hours.",
    "Order today and get free delivery on every order over twenty pounds.",
]

LOW_QUALITY = [
    "Harbour Stores spring catalogue: item list, prices, sizes.",
    "Blue cotton shirt, medium, twelve pounds. Red wool scarf, long, nine pounds. Green canvas bag, large, fifteen "
    "pounds. Brown leather belt, adjustable, eighteen pounds. Grey fleece jacket, small, thirty pounds.",
    "Yellow rain coat, hooded, forty pounds. Black walking boots, waterproof, sixty pounds. White sun hat, wide "
    "brim, eight pounds. Navy swimming shorts, quick dry, eleven pounds. Orange beach towel, cotton, seven pounds.",
    "Kitchen items: steel kettle, ceramic teapot, glass jug, wooden spoons, enamel mugs, linen tea towels, copper "
    "pans, stoneware bowls. Garden items: clay pots, bamboo canes, hand trowel, watering can, pruning shears.",
    "Delivery: next day. Returns: thirty days. Payment: card, cash, voucher. Opening hours: Monday, Tuesday, "
    "Wednesday, Thursday, Friday, Saturday. Closed Sunday.",
]

TOO_SHORT = [
    "Our new shop on the quay opens in May. Until then, please call the office for orders and collection times. "
    "Thank you for your patience while we finish the building work.",
]

FRENCH_MARKET = [
    "Chaque samedi matin, la place de l'église se transforme en un grand marché où se retrouvent les habitants du "
    "village et des communes voisines. Dès sept heures, les maraîchers installent leurs étals de légumes, et l'odeur "
    "du pain chaud se mêle à celle des fromages affinés dans les caves de la vallée.",
    "On y trouve des produits que les supermarchés ne proposent plus guère : des variétés anciennes de tomates, du "
    "miel de châtaignier, des œufs de poules élevées en plein air et, à l'automne, des champignons ramassés la veille "
    "dans les bois. Les prix sont parfois un peu plus élevés, mais les clients fidèles disent qu'ils paient surtout "
    "la fraîcheur et le plaisir de connaître celui qui a cultivé ce qu'ils mangent.",
    "Le marché est aussi un lieu de rencontre. Les anciens s'attardent au café pour commenter les nouvelles, les "
    "enfants courent entre les stands, et les nouveaux venus apprennent vite que c'est ici qu'il faut demander un "
    "artisan ou une recette. Pour beaucoup, la semaine ne commence vraiment qu'après ce rendez-vous.",
    "La mairie envisage d'agrandir le marché l'été prochain afin d'accueillir davantage de producteurs locaux, et "
    "une consultation sera organisée auprès des habitants au début du printemps.",
]

GERMAN_HIKING = [
    "Wer im Herbst durch die Mittelgebirge wandert, erlebt die Wälder in ihren schönsten Farben. Die Buchen "
    "leuchten gelb und kupferrot, morgens liegt oft Nebel in den Tälern, und auf den Höhen reicht der Blick bei "
    "klarem Wetter bis zu den Alpen.",
    "Für eine Tageswanderung braucht man keine besondere Ausrüstung, aber einige Dinge sollte man nicht vergessen. "
    "Feste Schuhe mit gutem Profil sind wichtig, weil das Laub die Wege rutschig macht. Eine warme Jacke gehört in "
    "den Rucksack, denn die Temperaturen fallen am Nachmittag schnell, sobald die Sonne hinter den Hügeln "
    "verschwindet.",
    "Viele Wanderwege sind gut markiert, doch im Herbst werden die Tage kürzer. Es lohnt sich, früh aufzubrechen "
    "und die Route so zu planen, dass man vor Einbruch der Dunkelheit wieder im Tal ist. Die Hütten der "
    "Wandervereine haben oft nur noch am Wochenende geöffnet, deshalb sollte man ausreichend Wasser und Proviant "
    "mitnehmen.",
    "Wer die Natur respektiert, bleibt auf den Wegen, nimmt seinen Abfall wieder mit und hält Hunde an der Leine, "
    "damit das Wild in Ruhe seine Wintervorräte anlegen kann.",
]

SPANISH_COOKING = [
    "En muchas casas de España, el domingo es el día de la comida familiar. Desde media mañana la cocina se llena "
    "de ruido y de olores, y cada generación tiene su tarea: los abuelos vigilan el guiso, los padres preparan la "
    "mesa y los niños ayudan a pelar patatas o a cortar el pan.",
    "El plato principal cambia según la región y la estación. En la costa es frecuente un arroz con marisco cocinado "
    "en una paella grande, mientras que en el interior se prefieren los cocidos de garbanzos con verduras y carne, "
    "que hierven despacio durante horas. Lo importante no es la receta exacta, sino que cada familia la prepara a "
    "su manera y defiende que la suya es la mejor.",
    "La comida suele alargarse hasta bien entrada la tarde. Después del postre llega el café, y con él la "
    "sobremesa, ese tiempo tranquilo en el que nadie tiene prisa por levantarse y se habla de todo un poco: del "
    "trabajo, de los estudios, de los viajes y de los recuerdos de otros domingos.",
    "Aunque el ritmo de vida ha cambiado, muchas personas siguen considerando esta costumbre una parte esencial de "
    "la semana y hacen lo posible por no perderla.",
]

WIKIPEDIA_TIDE_POOL = [
    "A tide pool is a shallow pool of seawater that forms on a rocky intertidal shore when the tide goes out. Tide "
    "pools are isolated from the open sea for hours at a time, and the organisms living in them must tolerate rapid "
    "changes in temperature, salinity and oxygen.",
    "Typical inhabitants include sea anemones, barnacles, mussels, limpets, periwinkles, crabs and small fish. The "
    "species present depend strongly on the height of the pool on the shore, a pattern known as zonation.",
]

PHARMACY_SPAM = [
    "Lowest prices on every order, shipped discreetly to your door within two days. No prescription questions, "
    "fast checkout and a money back promise on all packages.",
]

FASHION_SPAM = [
    "Live shows every evening with our hosts, exclusive previews of the new collection and members only discounts "
    "for everyone who joins tonight.",
]

BLOCKLISTED = [
    "Members area. Please confirm your age to continue to the site. New videos are added every day for members, "
    "with streaming in high definition on every device.",
]


# ---------------------------------------------------------------------------------------------------------------
# Pages and their fates


@dataclass
class Page:
    url: str
    fate: dict  # what expected.json records for this url
    file: int  # index into FILE_NAMES
    title: str = ""
    site: str = ""
    paragraphs: list[str] = field(default_factory=list)
    lang: str = "en"
    charset: str = "utf-8"
    kind: str = "html"  # html, gallery (images only), png, pdf, not_found, redirect
    location: str = ""  # redirect target
    identified_type: bool = True  # CC's WARC-Identified-Payload-Type header
    note: str = ""  # for README.md


def kept() -> dict:
    return {"kept": True}


def dropped(stage: str, reason: str) -> dict:
    return {"stage": stage, "reason": reason}


PAGES = [
    # --- sample-00000
    Page("https://coastal-walks.example.org/guides/tide-pools", kept(), 0, "Life in a Tide Pool", "Coastal Walks", TIDE_POOLS),
    Page("https://kitchen-notes.example.com/recipes/sourdough-starter", kept(), 0, "Making a Sourdough Starter from Scratch", "Kitchen Notes", SOURDOUGH),
    Page("https://cycle-workshop.example.net/how-to/fix-a-puncture", kept(), 0, "How to Fix a Puncture at the Roadside", "Cycle Workshop", PUNCTURE,
         identified_type=False, note="no WARC-Identified-Payload-Type: the reader must fall back to the HTTP Content-Type"),
    Page("https://plain-money.example.com/basics/emergency-fund", kept(), 0, "Building an Emergency Fund", "Plain Money", EMERGENCY_FUND),
    Page("https://coastal-walks.example.org/routes/headland-loop", kept(), 0, "The Headland Loop", "Coastal Walks", HEADLAND_LOOP,
         note="original of the near duplicate"),
    Page("https://kitchen-notes.example.com/recipes/lentil-soup", kept(), 0, "Red Lentil Soup", "Kitchen Notes", LENTIL_SOUP,
         note="original of the exact duplicate"),
    Page("https://riverton-gazette.example.com/news/library-vote", {"dedup": "substring", "first": True}, 0, "Council Approves New Library", "The Riverton Gazette",
         LIBRARY_VOTE + [GAZETTE_EDITORS_NOTE], note="shares the editor's note with three other pages"),
    Page("https://riverton-gazette.example.com/markets/this-week", {"dedup": "url", "copies": 2, "kept_copy": FILE_NAMES[0]}, 0,
         "Market Report: Spring Brings the Crowds", "The Riverton Gazette", MARKETS_WEEK_ONE, note="first crawl of a URL crawled twice"),
    Page("http://www.redtube.com/", dropped("url", "domain"), 0, "Members Area", "Members", BLOCKLISTED,
         note="domain on datatrove's shipped UT1 list; no banned word in the URL"),
    Page("https://pharmacy-deals.example.net/buy-cialis-online-cheap", dropped("url", "hard_word"), 0, "Discount Pharmacy", "Pharmacy Deals", PHARMACY_SPAM,
         note="'cialis' is in banned_words.txt"),
    Page("https://en.wikipedia.org/wiki/Tide_pool", dropped("url", "curated_source"), 0, "Tide pool", "Wikipedia", WIKIPEDIA_TIDE_POOL,
         note="The Pile's curated sources are excluded by RW"),
    Page("https://marche.example.org/fr/samedi-matin", dropped("language", "language"), 0, "Le marché du samedi matin", "Le Marché", FRENCH_MARKET,
         lang="fr", charset="windows-1252", note="French, served as windows-1252"),
    Page("https://harbour-stores.example.com/clearance", dropped("repetition", "dup_line_frac"), 0, "Clearance Event", "Harbour Stores", REPETITIVE),
    Page("https://coastal-walks.example.org/images/headland-map.png", dropped("read", "not_html"), 0, kind="png"),
    Page("https://coastal-walks.example.org/walks/old-quarry-path", dropped("read", "http_status"), 0, "Page not found", "Coastal Walks", kind="not_found"),
    # --- sample-00001
    Page("https://harbour-history.example.org/articles/lighthouse-keepers", kept(), 1, "The Last Lighthouse Keepers", "Harbour History", LIGHTHOUSE),
    Page("https://backyard-bees.example.com/blog/first-year", kept(), 1, "My First Year with Bees", "Backyard Bees", BEES),
    Page("https://green-plot.example.org/guides/composting", kept(), 1, "Composting at Home", "Green Plot", COMPOST),
    Page("https://kitchen-notes.example.com/recipes/apple-crumble", {"kept": True, "lines_edited": True}, 1, "Grandmother's Apple Crumble", "Kitchen Notes",
         APPLE_CRUMBLE, note="three boilerplate lines (one-word, counter, 'Sign in'), under 5% of words"),
    Page("https://recipe-aggregator.example.net/r/lentil-soup-8841", {"dedup": "exact", "duplicate_of": "https://kitchen-notes.example.com/recipes/lentil-soup"}, 1,
         "Red Lentil Soup", "Kitchen Notes", LENTIL_SOUP, note="byte-identical HTML at a second URL"),
    Page("https://riverton-gazette.example.com/news/bridge-repairs", {"dedup": "substring"}, 1, "Bridge Repairs to Begin", "The Riverton Gazette",
         BRIDGE_REPAIRS + [GAZETTE_EDITORS_NOTE], note="shares the editor's note"),
    Page("https://riverton-gazette.example.com/news/school-garden", {"dedup": "substring"}, 1, "School Garden Sells First Harvest", "The Riverton Gazette",
         SCHOOL_GARDEN + [GAZETTE_EDITORS_NOTE], note="shares the editor's note"),
    Page("https://fashion-reviews.example.com/lingerie-webcam-show", dropped("url", "soft_words"), 1, "Live Shows", "Fashion Reviews", FASHION_SPAM,
         note="two soft words: 'lingerie', 'webcam'"),
    Page("https://wandern.example.org/de/herbst-im-mittelgebirge", dropped("language", "language"), 1, "Herbst im Mittelgebirge", "Wandern", GERMAN_HIKING, lang="de"),
    Page("https://harbour-stores.example.com/catalogue", dropped("quality", "gopher_below_alpha_threshold"), 1, "Spring Catalogue", "Harbour Stores",
         LOW_QUALITY, note="a comma-separated price list: under 80% of tokens hold a letter, and no stop words"),
    Page("https://harbour-stores.example.com/opening-soon", dropped("quality", "gopher_short_doc"), 1, "Opening Soon", "Harbour Stores", TOO_SHORT),
    Page("https://harbour-town-news.example.com/stories/ferry-timetable", dropped("lines", "too_many_words_removed"), 1, "Ferry Timetable Cut",
         "Harbour Town News", FERRY_TIMETABLE_WITH_BOILERPLATE, note="caps, counter and one-word lines are over 5% of the words"),
    Page("https://city-library.example.org/reports/annual-report-2023.pdf", dropped("read", "not_html"), 1, kind="pdf"),
    Page("http://coastal-walks.example.org/", dropped("read", "http_status"), 1, kind="redirect", location="https://coastal-walks.example.org/"),
    Page("https://coastal-walks.example.org/gallery", dropped("extract", "empty"), 1, "Gallery", "Coastal Walks", kind="gallery",
         note="images only, no text: trafilatura returns nothing"),
    # --- sample-00002
    Page("https://sky-questions.example.net/answers/why-rainbows-are-curved", kept(), 2, "Why Are Rainbows Curved?", "Sky Questions", RAINBOWS),
    Page("https://quiet-moves.example.com/lessons/first-openings", kept(), 2, "Chess Openings for Beginners", "Quiet Moves", CHESS),
    Page("https://leaf-and-pot.example.org/care/winter-houseplants", kept(), 2, "Keeping Houseplants Alive in Winter", "Leaf and Pot", HOUSEPLANTS),
    Page("https://walking-coast.example.net/routes/headland-loop-walk", {"dedup": "near", "duplicate_of": "https://coastal-walks.example.org/routes/headland-loop"}, 2,
         "Headland Loop Walk", "Walking the Coast", HEADLAND_LOOP_NEAR_DUPLICATE, note="the headland loop with one paragraph in ten removed"),
    Page("https://riverton-gazette.example.com/news/river-festival", {"dedup": "substring"}, 2, "River Festival Returns", "The Riverton Gazette",
         RIVER_FESTIVAL + [GAZETTE_EDITORS_NOTE], note="shares the editor's note"),
    Page("https://riverton-gazette.example.com/markets/this-week", {"dedup": "url", "copies": 2, "kept_copy": FILE_NAMES[0]}, 2,
         "Market Report: Rain Keeps Shoppers Away", "The Riverton Gazette", MARKETS_WEEK_TWO,
         note="second crawl, a week later, different text: URL dedup drops it"),
    Page("https://cocina.example.org/es/comida-del-domingo", dropped("language", "language"), 2, "La comida del domingo", "Cocina", SPANISH_COOKING, lang="es"),
]  # fmt: skip

# The span exact-substring dedup must cut from every page that carries it but the first (earliest in input order).
SUBSTRING_SPAN = GAZETTE_EDITORS_NOTE


# ---------------------------------------------------------------------------------------------------------------
# HTML


NAV_LABELS = {
    "en": ("Home", "Topics", "About us", "Contact", "Subscribe", "Related reading", "All rights reserved.", "Privacy", "Terms of use"),
    "fr": ("Accueil", "Rubriques", "Qui sommes-nous", "Contact", "S'abonner", "À lire aussi", "Tous droits réservés.", "Confidentialité", "Mentions légales"),
    "de": ("Startseite", "Themen", "Über uns", "Kontakt", "Abonnieren", "Mehr zum Thema", "Alle Rechte vorbehalten.", "Datenschutz", "Impressum"),
    "es": ("Inicio", "Temas", "Quiénes somos", "Contacto", "Suscribirse", "Lecturas relacionadas", "Todos los derechos reservados.", "Privacidad", "Aviso legal"),
}  # fmt: skip


def article_html(page: Page, date: datetime) -> str:
    home, topics, about, contact, subscribe, related, rights, privacy, terms = NAV_LABELS[page.lang]
    body = "\n".join(f"<p>{paragraph}</p>" for paragraph in page.paragraphs)
    others = [p for p in PAGES if p.site == page.site and p.url != page.url and p.kind == "html" and p.title][:3]
    related_items = "".join(f'<li><a href="{p.url}">{p.title}</a></li>' for p in others)
    return f"""<!DOCTYPE html>
<html lang="{page.lang}">
<head>
<meta charset="{page.charset}">
<title>{page.title} | {page.site}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/site.css">
<script>window.dataLayer = window.dataLayer || []; function track(e) {{ window.dataLayer.push(e); }}</script>
</head>
<body>
<div class="cookie-banner">This site uses cookies. <a href="/privacy">{privacy}</a> <button>OK</button></div>
<header class="site-header">
<a class="logo" href="/">{page.site}</a>
<nav><ul><li><a href="/">{home}</a></li><li><a href="/topics">{topics}</a></li><li><a href="/about">{about}</a></li><li><a href="/contact">{contact}</a></li><li><a href="/subscribe">{subscribe}</a></li></ul></nav>
</header>
<main>
<article>
<h1>{page.title}</h1>
<p class="byline"><time datetime="{date:%Y-%m-%d}">{date:%Y-%m-%d}</time></p>
{body}
</article>
<aside class="related"><h2>{related}</h2><ul>{related_items}</ul></aside>
</main>
<footer><p>© 2024 {page.site}. {rights}</p><ul><li><a href="/privacy">{privacy}</a></li><li><a href="/terms">{terms}</a></li></ul></footer>
</body>
</html>
"""


def gallery_html(page: Page) -> str:
    """Images only, no navigation: trafilatura's fallbacks find nothing either."""
    figures = "".join(f'<figure><img src="/images/headland-{i}.jpg" alt=""></figure>' for i in range(1, 7))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{page.title} | {page.site}</title></head>'
        f'<body><div class="gallery">{figures}</div><script src="/static/lightbox.js"></script></body></html>\n'
    )


def not_found_html(page: Page) -> str:
    return (
        f"<!DOCTYPE html>\n<html><head><title>Page not found | {page.site}</title></head><body><h1>Page not found</h1>"
        "<p>Sorry, the page you are looking for has moved or no longer exists. Try the search box or go back to the "
        'home page.</p><p><a href="/">Home</a></p></body></html>\n'
    )


def redirect_html(page: Page) -> str:
    return f'<html><head><title>301 Moved Permanently</title></head><body><a href="{page.location}">Moved</a></body></html>\n'


def png_bytes() -> bytes:
    """A valid 16x16 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    width = height = 16
    rows = b"".join(b"\x00" + bytes([0x80]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def pdf_bytes() -> bytes:
    """A minimal one-page PDF with a line of text."""
    stream = b"BT /F1 18 Tf 72 720 Td (City Library annual report 2023) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = BytesIO(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def http_response(page: Page, date: datetime) -> tuple[str, list[tuple[str, str]], bytes, str]:
    """Status line, headers, body and the MIME type Common Crawl would identify for the page."""
    if page.kind == "png":
        status, mime, body = "200 OK", "image/png", png_bytes()
        content_type = mime
    elif page.kind == "pdf":
        status, mime, body = "200 OK", "application/pdf", pdf_bytes()
        content_type = mime
    else:
        status = {"not_found": "404 Not Found", "redirect": "301 Moved Permanently"}.get(page.kind, "200 OK")
        render = {"not_found": not_found_html, "redirect": redirect_html, "gallery": gallery_html}.get(page.kind)
        html = render(page) if render else article_html(page, date)
        mime, body = "text/html", html.encode(page.charset)
        content_type = f"text/html; charset={page.charset}"
    headers = [
        ("Date", date.strftime("%a, %d %b %Y %H:%M:%S GMT")),
        ("Server", "nginx"),
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
    ]
    if page.kind == "redirect":
        headers.append(("Location", page.location))
    return status, headers, body, mime


# ---------------------------------------------------------------------------------------------------------------
# WARC


def record_id(*parts) -> str:
    return f"<urn:uuid:{uuid.uuid5(RECORD_NAMESPACE, '/'.join(map(str, parts)))}>"


def warc_date(date: datetime) -> str:
    return date.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_warc(path: Path, file_index: int, pages: list[Page]) -> None:
    name = FILE_NAMES[file_index]
    first_date = CRAWL_START + timedelta(days=7 * file_index)
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="1.0")
        info = (
            "software: mdr data_samples/make_samples.py\r\n"
            "format: WARC File Format 1.0\r\n"
            "conformsTo: http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf\r\n"
            "isPartOf: MDR-SAMPLES-2024-10\r\n"
            "publisher: mdr project (pages written for these samples)\r\n"
            "description: Small synthetic crawl that plants one page per pipeline stage; see data_samples/README.md\r\n"
        ).encode()
        writer.write_record(
            writer.create_warc_record(
                "", "warcinfo", payload=BytesIO(info), length=len(info), warc_content_type="application/warc-fields",
                warc_headers_dict={"WARC-Date": warc_date(first_date), "WARC-Record-ID": record_id(name, "warcinfo"), "WARC-Filename": name},
            )
        )  # fmt: skip
        for index, page in enumerate(pages):
            date = first_date + timedelta(minutes=3 * index, seconds=17 * index % 60)
            response_id = record_id(name, index, "response")
            request_id = record_id(name, index, "request")
            ip_address = f"192.0.2.{10 + index}"  # TEST-NET-1, reserved for documentation
            scheme, _, rest = page.url.partition("://")
            host, _, path = rest.partition("/")
            request_headers = StatusAndHeaders(
                f"GET /{path} HTTP/1.1",
                [("Host", host), ("User-Agent", "mdr-samples/1.0"), ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
                 ("Accept-Encoding", "identity")],
                is_http_request=True,
            )  # fmt: skip
            writer.write_record(
                writer.create_warc_record(
                    page.url, "request", http_headers=request_headers,
                    warc_headers_dict={"WARC-Date": warc_date(date), "WARC-Record-ID": request_id,
                                       "WARC-Concurrent-To": response_id, "WARC-IP-Address": ip_address},
                )
            )  # fmt: skip
            status, headers, body, mime = http_response(page, date)
            response_headers = {"WARC-Date": warc_date(date), "WARC-Record-ID": response_id, "WARC-IP-Address": ip_address}
            if page.identified_type:
                response_headers["WARC-Identified-Payload-Type"] = mime
            writer.write_record(
                writer.create_warc_record(
                    page.url, "response", payload=BytesIO(body), length=len(body),
                    http_headers=StatusAndHeaders(status, headers, protocol="HTTP/1.1"), warc_headers_dict=response_headers,
                )
            )  # fmt: skip
            metadata = f"fetchTimeMs: {40 + 7 * index}\r\n"
            if mime == "text/html":
                metadata += f"charset-detected: {page.charset.upper()}\r\n"
            metadata = metadata.encode()
            writer.write_record(
                writer.create_warc_record(
                    page.url, "metadata", payload=BytesIO(metadata), length=len(metadata), warc_content_type="application/warc-fields",
                    warc_headers_dict={"WARC-Date": warc_date(date), "WARC-Record-ID": record_id(name, index, "metadata"),
                                       "WARC-Refers-To": response_id},
                )
            )  # fmt: skip


def expected_fates() -> dict:
    fates = {}
    for page in PAGES:
        fate = dict(page.fate)
        if fate.get("dedup") == "substring":
            fate["keeps" if fate.pop("first", False) else "cut"] = SUBSTRING_SPAN
        fates.setdefault(page.url, fate)
    return fates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: data_samples/)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for file_index, name in enumerate(FILE_NAMES):
        write_warc(args.out / name, file_index, [page for page in PAGES if page.file == file_index])
    (args.out / "expected.json").write_text(json.dumps(expected_fates(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
