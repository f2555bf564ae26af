"""Search queries to label: a deterministic synthesizer and the user's own query files.

Two sources feed the teacher:

* :func:`synthesize_queries` fills templates from a built-in vocabulary. Categories are one
  ``<channel>_dominant`` per channel, ``balanced`` (two channels matter about equally) and ``complex`` (long,
  multi-detail queries spanning two or three channels). A mix says which share of the queries each category
  gets; counts are exact (largest-remainder rounding). Output is deterministic for a seed and de-duplicated
  with :func:`normalize_query`.
* :func:`parse_user_queries` reads a ``.txt``, ``.jsonl`` or ``.csv`` file of real queries (search logs are
  the best distillation prompts) and counts every line it skips, by reason.

:func:`plan_queries` combines both into the list the pipeline labels.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import random
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from search_router.shared.channels import DEFAULT_CHANNELS, ChannelSet

logger = logging.getLogger(__name__)

SYNTHETIC: Final = "synthetic"
USER: Final = "user"
USER_CATEGORY: Final = "user"
BALANCED: Final = "balanced"
COMPLEX: Final = "complex"
DOMINANT_SUFFIX: Final = "_dominant"

MAX_QUERY_CHARS: Final = 1_000
MAX_CATEGORY_CHARS: Final = 64
MAX_INVALID_SAMPLES: Final = 20
REJECTED_CONTROL_CHARACTERS: Final = "control_characters"
RESERVED_CATEGORY_PREFIX: Final = "calibration"  # the judge's calibration record (search_router.pipeline.judge) uses it
REJECTED_NO_VISIBLE_TEXT: Final = "no_visible_text"
USER_FILE_EXTENSIONS: Final = (".txt", ".jsonl", ".csv")
DEFAULT_MAX_USER_SHARE: Final = 0.5

DEFAULT_MIX: Final[Mapping[str, float]] = {
    "visual_dominant": 0.22,
    "audio_dominant": 0.17,
    "transcription_dominant": 0.17,
    "metadata_dominant": 0.14,
    BALANCED: 0.15,
    COMPLEX: 0.15,
}
"""Category shares for :data:`search_router.shared.channels.DEFAULT_CHANNELS` (sums to 1)."""

_MIXED_SHARE: Final = 0.30  # balanced + complex share in default_mix() for other channel sets


# ---------------------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------------------
_EDGE_SYMBOLS: Final = frozenset("`´^~|")


def _is_edge_char(char: str) -> bool:
    return char.isspace() or char in _EDGE_SYMBOLS or unicodedata.category(char).startswith("P")


def normalize_query(text: str) -> str:
    """The de-duplication key of a query: NFKC, case-folded, whitespace collapsed, edge punctuation removed.

    ``'  "Sunset  over Mountains?" '`` and ``"sunset over mountains"`` share a key. Idempotent. Only edges are
    stripped: inner punctuation (``"rock 'n' roll"``, ``"AC/DC"``) is kept.
    """
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    start, end = 0, len(text)
    while start < end and _is_edge_char(text[start]):
        start += 1
    while end > start and _is_edge_char(text[end - 1]):
        end -= 1
    return text[start:end]


def _clean_text(text: str) -> str:
    """A query as stored: surrounding whitespace removed and inner whitespace runs collapsed to one space."""
    return " ".join(text.split())


# Control characters a query may contain only as ordinary whitespace (collapsed to a space when stored).
_ORDINARY_WHITESPACE: Final = frozenset("\t\n\r\x0b\x0c")
# Format characters kept because they carry meaning: zero-width non-joiner and joiner (Persian and Indic
# scripts, emoji sequences). Every other format character (zero-width space, BOM, bidi controls, soft hyphen ...)
# is invisible and is removed.
_KEPT_FORMAT_CHARACTERS: Final = frozenset("\u200c\u200d")


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds a control character (Unicode Cc) other than ordinary whitespace."""
    return any(unicodedata.category(c) == "Cc" and c not in _ORDINARY_WHITESPACE for c in text)


def strip_format_characters(text: str) -> str:
    """``text`` without invisible format characters (Unicode Cf), zero-width (non-)joiners excepted."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf" or c in _KEPT_FORMAT_CHARACTERS)


def has_visible_text(text: str) -> bool:
    """True when ``text`` holds at least one letter, digit or symbol (emoji included), not just marks and spaces."""
    return any(unicodedata.category(c)[0] in "LNS" for c in text)


# ---------------------------------------------------------------------------------------------------------
# Value types
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    """One query to label. ``source`` is ``"synthetic"`` or ``"user"``; ``category`` a mix category or a user
    label (``"user"`` by default)."""

    text: str
    category: str
    source: str


# ---------------------------------------------------------------------------------------------------------
# Categories and mix
# ---------------------------------------------------------------------------------------------------------
def dominant_category(channel: str) -> str:
    """``"visual"`` -> ``"visual_dominant"``."""
    return f"{channel}{DOMINANT_SUFFIX}"


def categories(channels: ChannelSet) -> tuple[str, ...]:
    """Synthetic categories for ``channels``: one dominant per channel (channel order), balanced, complex."""
    return (*(dominant_category(name) for name in channels.names), BALANCED, COMPLEX)


def default_mix(channels: ChannelSet) -> dict[str, float]:
    """:data:`DEFAULT_MIX` for the default channels; otherwise 15% balanced, 15% complex and the remaining 70%
    spread evenly over the channels' dominant categories."""
    if channels.names == DEFAULT_CHANNELS.names:
        return dict(DEFAULT_MIX)
    share = (1.0 - _MIXED_SHARE) / len(channels)
    mix = {dominant_category(name): share for name in channels.names}
    mix[BALANCED] = _MIXED_SHARE / 2
    mix[COMPLEX] = _MIXED_SHARE / 2
    return mix


def resolve_mix(channels: ChannelSet, mix: Mapping[str, float] | None) -> dict[str, float]:
    """A validated mix over every category of ``channels``, normalized to sum 1 (missing categories get 0).

    ``ValueError`` names an unknown category or a negative, non-finite or all-zero share.
    """
    allowed = categories(channels)
    if mix is None:
        return default_mix(channels)
    unknown = sorted(set(mix) - set(allowed))
    if unknown:
        raise ValueError(f"unknown query categories {unknown}; allowed: {', '.join(allowed)}")
    for name, share in mix.items():
        if isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share) or share < 0:
            raise ValueError(f"mix share for {name!r} must be a finite number >= 0, got {share!r}")
    total = math.fsum(mix.values())
    if total <= 0:
        raise ValueError("mix shares must not all be zero")
    return {name: float(mix.get(name, 0.0)) / total for name in allowed}


def largest_remainder(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split the integer ``total`` proportionally to ``weights`` so that the parts sum to ``total`` exactly.

    Each part is the floor of its exact share plus at most one; the leftover units go to the largest
    fractional parts (ties: earlier key first). Zero weights get zero.
    """
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    weight_sum = math.fsum(weights.values())
    if weight_sum <= 0:
        return dict.fromkeys(weights, 0)
    exact = {key: total * weight / weight_sum for key, weight in weights.items()}
    parts = {key: math.floor(value) for key, value in exact.items()}
    left = total - sum(parts.values())
    order = sorted(exact, key=lambda key: -(exact[key] - parts[key]))  # stable: ties keep key order
    for key in order[:left]:
        parts[key] += 1
    return parts


def _v(entries: str) -> tuple[str, ...]:
    """Vocabulary written compactly: ``"a red car | a blue bus"`` -> ``("a red car", "a blue bus")``."""
    return tuple(entry.strip() for entry in entries.split("|"))


# ---------------------------------------------------------------------------------------------------------
# Vocabulary (built-in channels). Every entry is a natural search-query fragment; determiners are part of the
# entry so that templates never produce "a elephant".
# ---------------------------------------------------------------------------------------------------------
_VOCAB: Final[dict[str, tuple[str, ...]]] = {
    # visual ----------------------------------------------------------------------------------------------------
    "v_person": _v(
        "a man in a red jacket | a woman in a yellow raincoat | two children | an elderly couple | "
        "a group of teenagers | a chef in a white apron | a surfer in a black wetsuit | "
        "a little girl with balloons | a bearded man with glasses | a skateboarder | a ballerina in a pink tutu | "
        "a firefighter | a soccer player in a green jersey | a couple holding hands | a toddler | a police officer | "
        "a street performer | a yoga instructor | a marathon runner | a lone hiker | a cyclist in a neon vest | "
        "a woman with curly red hair | a man in a grey suit | a boy in a blue cap | a nurse in green scrubs"
    ),
    "v_person_action": _v(
        "running | walking slowly | dancing | jumping | laughing | sitting on a bench | reading a book | "
        "riding a bicycle | carrying a surfboard | taking a selfie | playing guitar | eating ice cream | juggling | "
        "stretching | crossing the street | waving | climbing a wall | painting a mural | walking a dog | "
        "doing a cartwheel | hugging | looking at the sky | skipping stones | cooking | pushing a stroller"
    ),
    "v_place": _v(
        "on a sandy beach | in a crowded market | through a snowy forest | across a busy street | "
        "in a neon-lit alley | on a rooftop | in a sunflower field | along a river | in a library | "
        "in a modern kitchen | on a mountain trail | in the rain | in an empty parking lot | under cherry blossoms | "
        "in the desert | on a frozen lake | in a subway station | at a farmers market | in a park | "
        "on a wooden pier | in a dim warehouse | near a waterfall | on a city bridge | in a wheat field | "
        "in a hospital corridor | on a basketball court | in a graffiti-covered tunnel | at a train platform | "
        "in a greenhouse | by a campfire"
    ),
    "v_animal": _v(
        "a golden retriever | a black cat | a white horse | a flock of seagulls | a herd of elephants | "
        "a brown bear | a red fox | a panda | a pod of dolphins | a bald eagle | a tiger | a kitten | "
        "a herd of zebras | a pack of wolves | a hummingbird | a giraffe | a sea turtle | a lion cub"
    ),
    "v_animal_action": _v(
        "running | sleeping | playing | swimming | jumping | hunting | eating | rolling in the grass | "
        "chasing its tail | drinking water | climbing | flying low | hiding | stretching | walking slowly"
    ),
    "v_vehicle": _v(
        "a red sports car | a vintage bicycle | a blue pickup truck | a fishing boat | a steam train | "
        "a yellow school bus | a motorcycle | a hot air balloon | a delivery van | a sailboat | "
        "a police car with flashing lights | a tractor | a white limousine | a cable car"
    ),
    "v_vehicle_action": _v(
        "driving | speeding | parked | turning a corner | crossing | moving slowly | drifting | stuck in traffic | "
        "passing by | racing"
    ),
    "v_route": _v(
        "through a tunnel | on a coastal road | across a desert highway | over a bridge | through the city | "
        "down a mountain pass | on a dirt road | along the harbor | through a rainy street | past a lighthouse | "
        "through autumn forest | at a crossroads | on a race track | in heavy snow"
    ),
    "v_scene": _v(
        "snowy mountains | a misty pine forest | a crowded city street | a tropical beach | rolling green hills | "
        "a desert canyon | a frozen lake | a lighthouse on a cliff | a busy harbor | a field of lavender | "
        "an old stone bridge | a city skyline | a quiet village | a jungle waterfall | an active volcano | "
        "a glacier | a golden wheat field | a rocky coastline | a neon-lit street | an abandoned factory | "
        "a vineyard | a rice terrace | a coral reef | a castle on a hill | a calm lake"
    ),
    "v_sky_event": _v(
        "sunset | sunrise | lightning | fireworks | a rainbow | storm clouds | northern lights | a full moon | "
        "a flock of birds | a meteor shower"
    ),
    "v_light": _v(
        "at sunset | at sunrise | at night | at golden hour | in thick fog | under a full moon | "
        "during a snowstorm | in bright midday sun | at dusk | under stormy skies | in autumn colours | "
        "after the rain"
    ),
    "v_shot": _v(
        "drone shot | aerial view | time-lapse | close-up | wide shot | slow motion footage | tracking shot | "
        "panoramic shot | overhead shot | handheld footage"
    ),
    "v_color": _v(
        "red | bright yellow | deep blue | green | black and white | orange | purple | pink | silver | golden | "
        "turquoise | neon green"
    ),
    "v_object": _v(
        "umbrella | balloon | door | vintage car | kite | bicycle | dress | sneakers | coffee cup | scarf | tent | "
        "lantern | backpack | sailboat | telephone booth"
    ),
    "v_object_where": _v(
        "on a rainy street | against a white wall | in the snow | on a wooden table | in an empty room | "
        "on a beach | floating in the sky | in a shop window | next to a river | under a streetlight | "
        "on a red carpet | in tall grass"
    ),
    "v_plain_person": _v(
        "a man | a woman | a young girl | an old man | a teenager | a bride | a child | a tall man | a dancer | "
        "a model | a boy | a grandmother"
    ),
    "v_outfit": _v(
        "a red dress | a leather jacket | a yellow hard hat | sunglasses and a straw hat | a tuxedo | "
        "a striped sweater | a white wedding dress | a superhero costume | a denim jacket | a green hoodie | "
        "a business suit | a kimono | hiking boots and a backpack | a cowboy hat | a polka dot shirt | "
        "a winter coat and scarf | a lab coat | a football kit | ripped jeans | a silver sequin gown"
    ),
    "v_detail": _v(
        "raindrops on a window | hands kneading dough | a bee on a flower | an eye with green iris | melting ice | "
        "a spinning vinyl record | coffee being poured | a burning candle | autumn leaves | a ticking watch face | "
        "paint dripping | waves on sand | a cat's whiskers | sparks from a welder | a dew-covered spider web | "
        "bubbles in water | a chessboard | fingers typing | a rusty lock | flour on a table"
    ),
    # audio -----------------------------------------------------------------------------------------------------
    "a_sound": _v(
        "a dog barking | thunder rumbling | rain falling on a tin roof | waves crashing | birds chirping | "
        "a baby crying | glass shattering | a car horn honking | sirens wailing | church bells ringing | "
        "wind howling | a crowd cheering | footsteps echoing | a door creaking | fireworks popping | "
        "an engine revving | a kettle whistling | people applauding | a train whistle blowing | a phone ringing | "
        "a helicopter hovering | leaves rustling | a cat meowing | an owl hooting | a jet flying overhead | "
        "a river rushing | a clock ticking | a crowd chanting | a baby laughing | horses galloping | "
        "a chainsaw buzzing | someone typing on a keyboard"
    ),
    "a_finite": _v(
        "thunder rolls | rain pours | the wind howls | a crowd cheers | a siren wails in the distance | "
        "waves crash | a train passes | birds sing | a baby cries | church bells ring | an alarm goes off | "
        "fireworks explode | a dog barks | an engine roars | people clap | a kettle whistles | the crowd boos | "
        "a phone rings | a door slams | a horn blares"
    ),
    "a_mood": _v(
        "upbeat | calm | sad | dramatic | relaxing | energetic | eerie | romantic | epic | cheerful | dark | "
        "melancholic | funky | dreamy | aggressive | soft | uplifting | tense | nostalgic | playful"
    ),
    "a_genre": _v(
        "jazz | piano | orchestral | rock | electronic | hip hop | acoustic guitar | country | reggae | classical | "
        "lo-fi | techno | blues | folk | ambient | heavy metal | latin | synthwave | gospel | flamenco"
    ),
    "a_instrument": _v(
        "saxophone | violin | drums | cello | trumpet | harmonica | electric guitar | piano | flute | banjo | "
        "bagpipes | ukulele | harp | accordion | double bass | sitar | steel drums | organ | clarinet | "
        "synthesizer"
    ),
    "a_vocal": _v(
        "a female vocalist | a male choir | a children's choir | heavy bass | a catchy chorus | whistling | "
        "a gospel choir | falsetto vocals | a rap verse | humming"
    ),
    "a_ambience": _v(
        "busy cafe | forest | ocean | city traffic | rainforest | office | airport terminal | night time | "
        "thunderstorm | crowded stadium | quiet library | subway | farmyard | fireplace | underwater"
    ),
    "a_sfx": _v(
        "explosion | laser | whoosh | door knock | gunshot | footstep | camera shutter | cash register | boing | "
        "heartbeat | swoosh | glass clink | zipper | keyboard click | thunderclap | buzzer | drum roll | "
        "record scratch | bubble pop | sword clash"
    ),
    # transcription ---------------------------------------------------------------------------------------------
    "t_frame": _v(
        "speech | clip | interview | moment | scene | podcast segment | lecture | part | video | meeting recording"
    ),
    "t_speaker": _v(
        "the CEO | the narrator | a doctor | the teacher | a politician | the coach | a scientist | the host | "
        "the presenter | someone | a child | the pilot | the chef | a reporter | the mayor | an astronaut | "
        "the professor | the judge | a customer | the interviewer | a nurse | the lawyer | a firefighter | "
        "the tour guide"
    ),
    "t_verb": _v(
        "mentions | talks about | explains | discusses | says something about | warns about | jokes about | "
        "complains about | announces | describes"
    ),
    "t_topic": _v(
        "quarterly revenue | climate change | the new product launch | vaccine safety | interest rates | "
        "the importance of sleep | renewable energy | artificial intelligence | how to bake sourdough bread | "
        "mental health | the election results | supply chain problems | the championship game | remote work | "
        "the housing market | ocean pollution | the merger | cybersecurity | layoffs | the budget deficit | "
        "space exploration | customer feedback | the safety procedure | the recipe ingredients | inflation | "
        "the team's strategy | password security | a product recall | the hiring plan | the history of the city"
    ),
    "t_quote": _v(
        '"happy birthday" | "we did it" | "let\'s get started" | "thank you all for coming" | '
        '"this changes everything" | "never give up" | "see you next week" | "welcome to the show" | '
        '"breaking news" | "I love you" | "can you hear me" | "we need to talk" | "that\'s not fair" | '
        '"trust the process" | "it\'s a deal" | "are you serious"'
    ),
    "t_question": _v(
        '"what happens next" | "where were you last night" | "how much does it cost" | "is anyone there" | '
        '"can we start over" | "why did you do it" | "who is responsible" | "what time is it" | '
        '"do you remember me" | "are we there yet"'
    ),
    "t_spoken": _v(
        "narration | dialogue | a conversation | a lecture | a monologue | an argument | a voiceover | a sermon | "
        "a debate | a phone call"
    ),
    "t_say": _v("saying | shouting | whispering | asking | repeating | yelling"),
    "t_says": _v("says | shouts | whispers | asks | repeats | yells"),
    # metadata --------------------------------------------------------------------------------------------------
    "m_person": _v(
        "Taylor Swift | Barack Obama | Serena Williams | Elon Musk | Beyoncé | Lionel Messi | David Attenborough | "
        "Oprah Winfrey | Tom Hanks | Greta Thunberg | LeBron James | Adele | Keanu Reeves | Malala Yousafzai | "
        "Gordon Ramsay | Ed Sheeran | Simone Biles | Jeff Bezos | Rihanna | Cristiano Ronaldo | Angela Merkel | "
        "Bill Gates | Zendaya | Roger Federer | Lady Gaga | Neil deGrasse Tyson | Usain Bolt | Emma Watson | "
        "Bad Bunny | Shakira"
    ),
    "m_format": _v(
        "interview | documentary | concert | press conference | keynote | music video | behind the scenes | "
        "highlights | red carpet | commercial | trailer | podcast episode | TED talk | live performance | "
        "award speech | biography"
    ),
    "m_year": tuple(str(year) for year in range(2005, 2026)),
    "m_org": _v("BBC | National Geographic | Netflix | PBS | CNN | Discovery Channel | NASA | Vice | Al Jazeera | HBO"),
    "m_subject": _v(
        "Antarctica | the Roman Empire | World War II | the Amazon rainforest | Silicon Valley | "
        "the Apollo 11 moon landing | the Great Barrier Reef | Formula 1 | the Beatles | ancient Egypt | "
        "the Berlin Wall | Mount Everest | the Titanic | Chernobyl | the Galápagos Islands"
    ),
    "m_brand": _v(
        "Nike | Apple | Coca-Cola | Toyota | Samsung | Adidas | Tesla | Google | IKEA | Pepsi | BMW | Amazon | "
        "Lego | McDonald's"
    ),
    "m_ad": _v("commercial | ad campaign | product launch event | Super Bowl ad | brand film | holiday ad"),
    "m_event": _v(
        "Olympics | World Cup final | Champions League final | Coachella | Wimbledon final | Met Gala | Eurovision | "
        "Oscars | Grammys | Tour de France | Super Bowl | Glastonbury"
    ),
    "m_event_part": _v(
        "highlights | full coverage | recap | opening ceremony | red carpet arrivals | best moments | "
        "press conference | post-match interviews"
    ),
    "m_genre": _v(
        "horror | romantic comedy | sci-fi | western | film noir | action | animated | true crime | musical | war | "
        "thriller | fantasy"
    ),
    "m_kind": _v("movies | trailers | documentaries | short films | series"),
    "m_decade": _v("1950s | 1960s | 1970s | 1980s | 1990s | 2000s"),
    "m_show": _v(
        "Planet Earth | The Office | Top Gear | MasterChef | Shark Tank | Saturday Night Live | The Tonight Show | "
        "Hot Ones | Cosmos"
    ),
    "m_season": tuple(str(number) for number in range(1, 11)),
    "m_episode": tuple(str(number) for number in range(1, 13)),
    "m_venue": _v(
        "Madison Square Garden | Wembley Stadium | the Sydney Opera House | the Hollywood Bowl | "
        "Red Rocks Amphitheatre | the Royal Albert Hall | Tokyo Dome | the Apollo Theater"
    ),
    "m_city": _v("Paris | Tokyo | London | New York | Rio de Janeiro | Berlin | Seoul | Mumbai | Toronto"),
    "m_tag": _v(
        "#travelvlog | #unboxing | #behindthescenes | #tutorial | #throwback | #asmr | #foodie | #lifehacks | "
        "#wedding | #fitness"
    ),
    "m_lang": _v("Spanish | French | Japanese | German | Korean | Portuguese | Hindi | Italian"),
    "m_caption": _v("subtitles | captions | closed captions"),
}

# Whole phrases of a built-in channel, used when it is combined with a custom channel.
_HEADS: Final[dict[str, tuple[str, ...]]] = {
    "visual": _v(
        "sunset over snowy mountains | a red sports car in the rain | aerial view of a city at night | "
        "a golden retriever on a beach | a woman in a red dress | a misty pine forest | a crowded market | "
        "close-up of raindrops on a window | a lighthouse on a cliff | a skateboarder in a tunnel"
    ),
    "audio": _v(
        "upbeat jazz music | thunder and heavy rain | a crowd cheering | a dog barking | calm piano music | "
        "waves crashing | church bells | an electric guitar solo | birds chirping | dramatic orchestral music"
    ),
    "transcription": _v(
        'someone saying "happy birthday" | the narrator explaining climate change | '
        "the CEO mentioning quarterly revenue | a doctor talking about vaccine safety | "
        "the coach discussing the team's strategy | a teacher explaining fractions | "
        'a reporter saying "breaking news" | the host welcoming the guests'
    ),
    "metadata": _v(
        "Taylor Swift 2023 | a BBC documentary | Nike commercial | Olympics 2024 | Barack Obama | "
        "a Netflix trailer | the Grammys 2019 | National Geographic | Lionel Messi | Planet Earth"
    ),
}

_GENERIC_PREFIX: Final = _v(
    "videos with | clips showing | footage of | scenes with | find | show me | looking for | best | "
    "compilation of | moments with"
)
_GENERIC_SUFFIX: Final = _v(
    "clip | footage | scene | video | compilation | moments | shots | segment | part | in the video"
)


@dataclass(frozen=True)
class _Template:
    """A pattern whose ``{slot}`` fields are filled from vocabulary lists. ``uses`` names the channels it needs."""

    pattern: str
    uses: tuple[str, ...]


def _t(pattern: str, *uses: str) -> _Template:
    return _Template(pattern, uses)


_BUILTIN_TEMPLATES: Final[dict[str, tuple[_Template, ...]]] = {
    "visual_dominant": (
        _t("{v_person} {v_person_action} {v_place}", "visual"),
        _t("{v_animal} {v_animal_action} {v_place}", "visual"),
        _t("{v_vehicle} {v_vehicle_action} {v_route}", "visual"),
        _t("{v_sky_event} over {v_scene}", "visual"),
        _t("{v_shot} of {v_scene} {v_light}", "visual"),
        _t("{v_color} {v_object} {v_object_where}", "visual"),
        _t("{v_plain_person} wearing {v_outfit} {v_place}", "visual"),
        _t("close-up of {v_detail}", "visual"),
        _t("{v_scene} {v_light}", "visual"),
        _t("{v_shot} of {v_animal} {v_animal_action}", "visual"),
    ),
    "audio_dominant": (
        _t("{a_sound} while {a_finite}", "audio"),
        _t("{a_sound} and {a_sound_2}", "audio"),
        _t("sound of {a_sound}", "audio"),
        _t("{a_sound} in the background", "audio"),
        _t("{a_mood} {a_genre} music", "audio"),
        _t("{a_mood} {a_genre} music with {a_instrument}", "audio"),
        _t("{a_instrument} solo", "audio"),
        _t("{a_instrument} and {a_instrument_2} duet", "audio"),
        _t("{a_genre} song with {a_vocal}", "audio"),
        _t("{a_ambience} ambience with {a_sound}", "audio"),
        _t("{a_sfx} sound effect", "audio"),
    ),
    "transcription_dominant": (
        _t("{t_frame} where {t_speaker} {t_verb} {t_topic}", "transcription"),
        _t("{t_speaker} {t_say} {t_quote}", "transcription"),
        _t("{t_speaker} asking {t_question}", "transcription"),
        _t("{t_spoken} about {t_topic}", "transcription"),
        _t("someone {t_says} {t_quote}", "transcription"),
        _t("the line {t_quote}", "transcription"),
        _t("{t_frame} where someone says {t_quote}", "transcription"),
        _t("{t_spoken} where {t_speaker} {t_verb} {t_topic}", "transcription"),
    ),
    "metadata_dominant": (
        _t("{m_person} {m_format} {m_year}", "metadata"),
        _t("{m_person} {m_event} {m_year} {m_format}", "metadata"),
        _t("{m_org} documentary about {m_subject}", "metadata"),
        _t("{m_org} {m_format} {m_year}", "metadata"),
        _t("{m_brand} {m_ad} {m_year}", "metadata"),
        _t("{m_event} {m_year} {m_event_part}", "metadata"),
        _t("{m_genre} {m_kind} from the {m_decade}", "metadata"),
        _t("{m_show} season {m_season} episode {m_episode}", "metadata"),
        _t("{m_person} {m_format} {m_city}", "metadata"),
        _t("{m_person} at {m_venue} {m_year}", "metadata"),
        _t("videos tagged {m_tag} from {m_year}", "metadata"),
        _t("{m_genre} {m_kind} with {m_lang} {m_caption}", "metadata"),
    ),
    BALANCED: (
        _t("{v_sky_event} over {v_scene} with {a_mood} {a_genre} music", "visual", "audio"),
        _t("{v_person} {v_person_action} {v_place} while {a_finite}", "visual", "audio"),
        _t("{v_animal} {v_animal_action} with {a_sound} in the background", "visual", "audio"),
        _t("{m_person} {v_person_action} {v_place}", "metadata", "visual"),
        _t("{m_org} footage of {v_scene} {v_light}", "metadata", "visual"),
        _t("{m_person} talking about {t_topic}", "metadata", "transcription"),
        _t("{m_person} {t_say} {t_quote}", "metadata", "transcription"),
        _t("{t_speaker} {t_verb} {t_topic} over {a_mood} {a_genre} music", "transcription", "audio"),
        _t("{t_spoken} about {t_topic} with {a_sound} in the background", "transcription", "audio"),
        _t("{v_plain_person} wearing {v_outfit} {t_say} {t_quote}", "visual", "transcription"),
        _t("{t_speaker} explaining {t_topic} {v_place}", "transcription", "visual"),
        _t("{m_person} song with {a_instrument}", "metadata", "audio"),
        _t("{m_event} {m_year} with {a_sound}", "metadata", "audio"),
    ),
    COMPLEX: (
        _t("{v_shot} of {v_scene} {v_light} with {a_sound} and {a_mood} {a_genre} music", "visual", "audio"),
        _t(
            "{m_person} {m_format} from {m_year} where the host asks about {t_topic} with {a_sound} in the background",
            "metadata",
            "transcription",
            "audio",
        ),
        _t(
            "{v_person} {v_person_action} {v_place} {v_light} while {t_speaker} {t_verb} {t_topic}",
            "visual",
            "transcription",
        ),
        _t(
            "{m_org} documentary about {m_subject} with footage of {v_scene} {v_light} and narration about {t_topic}",
            "metadata",
            "visual",
            "transcription",
        ),
        _t(
            "{t_frame} where {t_speaker} {t_verb} {t_topic} with {a_sound} in the background {v_place}",
            "transcription",
            "audio",
            "visual",
        ),
        _t(
            "{m_person} {m_format} at {m_venue} {m_year} with {a_mood} {a_genre} music and {a_sound}",
            "metadata",
            "audio",
        ),
        _t(
            "{v_animal} {v_animal_action} {v_place} {v_light} while the narrator {t_verb} {t_topic}",
            "visual",
            "transcription",
        ),
        _t(
            "{m_brand} {m_ad} {m_year} showing {v_plain_person} wearing {v_outfit} with {a_mood} {a_genre} music",
            "metadata",
            "visual",
            "audio",
        ),
        _t(
            "{v_vehicle} {v_vehicle_action} {v_route} {v_light} with {a_mood} {a_instrument} music and {a_sound}",
            "visual",
            "audio",
        ),
        _t(
            "{m_event} {m_year} {m_event_part} where {t_speaker} {t_says} {t_quote} as {a_finite}",
            "metadata",
            "transcription",
            "audio",
        ),
    ),
}

_SUFFIX_NUMBER = re.compile(r"_\d+$")
_FORMATTER = string.Formatter()


def _slots(pattern: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in _FORMATTER.parse(pattern) if name)


def _vocab_name(slot: str) -> str:
    return _SUFFIX_NUMBER.sub("", slot)


# ---------------------------------------------------------------------------------------------------------
# Custom channels: vocabulary from the channel's own configuration
# ---------------------------------------------------------------------------------------------------------
_TERM_SPLIT = re.compile(r"[:;,()/\[\]]|\s+(?:and|or|e\.g\.|such as|like|including)\s+", re.IGNORECASE)
_STOPWORDS: Final = frozenset(
    _v("a | an | the | of | to | in | on | for | with | by | at | from | and | or | is | are | be | that | this | what")
    + _v("which | who | how | any | other | etc")
)
_MAX_TERM_WORDS: Final = 6


def _description_terms(description: str) -> tuple[str, ...]:
    """Short noun-ish phrases of a channel description: ``"mood: happy, sad or tense"`` -> mood, happy, sad, tense."""
    terms: list[str] = []
    for raw in _TERM_SPLIT.split(description):
        term = " ".join(raw.strip(" .!?'\"-").split())
        words = term.split()
        if not words or len(words) > _MAX_TERM_WORDS or len(term) < 3:
            continue
        if all(word.lower() in _STOPWORDS for word in words):
            continue
        if term.lower() not in (existing.lower() for existing in terms):
            terms.append(term)
    return tuple(terms)


def _custom_heads(channel_name: str, examples: Sequence[str], description: str) -> tuple[str, ...]:
    heads: list[str] = []
    seen: set[str] = set()
    for phrase in (*examples, *_description_terms(description), channel_name.replace("_", " ")):
        key = normalize_query(phrase)
        if key and key not in seen:
            seen.add(key)
            heads.append(" ".join(phrase.split()))
    return tuple(heads)


# ---------------------------------------------------------------------------------------------------------
# Template spaces
# ---------------------------------------------------------------------------------------------------------
class _LazyPermutation:
    """Distinct indices of ``range(total)`` in random order without materializing the range up front.

    Random draws with rejection while less than half is used; then the unused rest is listed and shuffled,
    so the cost stays linear even when a small space is used up completely.
    """

    def __init__(self, total: int, rng: random.Random) -> None:
        self._total = total
        self._rng = rng
        self._used: set[int] = set()
        self._rest: list[int] | None = None

    def next(self) -> int | None:
        if self._rest is None and 2 * len(self._used) >= self._total:
            self._rest = [index for index in range(self._total) if index not in self._used]
            self._rng.shuffle(self._rest)
            self._used = set()
        if self._rest is not None:
            return self._rest.pop() if self._rest else None
        while True:
            index = self._rng.randrange(self._total)
            if index not in self._used:
                self._used.add(index)
                return index


@dataclass
class _Space:
    """One template with its slot lists: ``size`` combinations, drawn without replacement."""

    pattern: str
    slot_names: tuple[str, ...]
    lists: tuple[tuple[str, ...], ...]
    size: int
    permutation: _LazyPermutation | None = None

    def render(self, index: int) -> str | None:
        """The text of combination ``index``; ``None`` if it repeats a vocabulary entry ("a dog and a dog")."""
        values: dict[str, str] = {}
        chosen: list[str] = []
        for name, options in zip(self.slot_names, self.lists, strict=True):
            index, position = divmod(index, len(options))
            value = options[position]
            values[name] = value
            chosen.append(value)
        if len(set(chosen)) != len(chosen):
            return None
        return _clean_text(self.pattern.format_map(values))


def _space(pattern: str, vocab: Mapping[str, tuple[str, ...]]) -> _Space:
    names = tuple(dict.fromkeys(_slots(pattern)))
    lists = tuple(vocab[_vocab_name(name)] for name in names)
    return _Space(pattern, names, lists, math.prod(len(options) for options in lists))


def _category_spaces(channels: ChannelSet) -> dict[str, list[_Space]]:
    """Every template space per category for ``channels``.

    Built-in templates apply when all the channels they use are in the set (channels named ``visual``,
    ``audio``, ``transcription`` and ``metadata`` get the built-in vocabulary). Any other channel is built from
    its ``examples`` and the short phrases of its ``description`` (see :func:`synthesize_queries`).
    """
    names = set(channels.names)
    vocab: dict[str, tuple[str, ...]] = dict(_VOCAB)
    vocab["g_prefix"] = _GENERIC_PREFIX
    vocab["g_suffix"] = _GENERIC_SUFFIX
    for channel in channels:
        heads = _HEADS.get(channel.name) or _custom_heads(channel.name, channel.examples, channel.description)
        vocab[f"h_{channel.name}"] = heads

    spaces: dict[str, list[_Space]] = {category: [] for category in categories(channels)}
    for category, templates in _BUILTIN_TEMPLATES.items():
        if category in spaces:
            spaces[category] += [_space(t.pattern, vocab) for t in templates if set(t.uses) <= names]
    custom = [name for name in channels.names if name not in _HEADS]
    for name in custom:
        spaces[dominant_category(name)] += [_space(p, vocab) for p in _dominant_patterns(name)]
    for category, patterns in _mixed_patterns(channels.names, set(custom)).items():
        spaces[category] += [_space(pattern, vocab) for pattern in patterns]
    # A subset of the built-in channels that no built-in mixed template covers: generic mixed patterns.
    for category, patterns in _mixed_patterns(channels.names, names).items():
        if not spaces[category]:
            spaces[category] += [_space(pattern, vocab) for pattern in patterns]
    return spaces


def _dominant_patterns(name: str) -> list[str]:
    """Generic patterns of one channel's own phrases (examples and description terms)."""
    head = f"{{h_{name}}}"
    return [head, f"{{g_prefix}} {head}", f"{head} {{g_suffix}}", f"{{g_prefix}} {head} {{g_suffix}}"]


def _mixed_patterns(names: tuple[str, ...], involved: set[str]) -> dict[str, list[str]]:
    """Generic balanced (ordered pairs) and complex (ordered triples; long pairs for two channels) patterns
    over the channels' phrases, for the combinations that include at least one ``involved`` channel."""
    patterns: dict[str, list[str]] = {BALANCED: [], COMPLEX: []}
    for first, second in itertools.permutations(names, 2):
        if {first, second} & involved:
            patterns[BALANCED].append(f"{{h_{first}}} with {{h_{second}}}")
            if len(names) == 2:  # no triples: long pair queries instead
                patterns[COMPLEX].append(f"{{g_prefix}} {{h_{first}}} {{g_suffix}} with {{h_{second}}}")
    for first, second, third in itertools.permutations(names, 3):
        if {first, second, third} & involved:
            patterns[COMPLEX].append(f"{{h_{first}}} {{g_suffix}} with {{h_{second}}} and {{h_{third}}}")
    return patterns


def capacity(channels: ChannelSet) -> dict[str, int]:
    """Approximate number of distinct queries per category (template combinations; an upper bound, since a few
    combinations are rejected as repeats or normalize to the same text)."""
    return {category: sum(space.size for space in spaces) for category, spaces in _category_spaces(channels).items()}


# ---------------------------------------------------------------------------------------------------------
# Synthesis
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SynthesisResult:
    """Queries plus what happened: ``targets`` per category from the mix, ``produced`` per category, and the
    categories whose template space ran out (their shortfall was filled from other categories)."""

    queries: list[Query]
    targets: dict[str, int]
    produced: dict[str, int]
    exhausted: list[str] = field(default_factory=list)

    @property
    def shortfall(self) -> int:
        """How many fewer queries than requested exist at all (0 normally)."""
        return sum(self.targets.values()) - len(self.queries)


class _CategorySampler:
    def __init__(self, category: str, spaces: list[_Space], rng: random.Random) -> None:
        self.category = category
        self._rng = rng
        self._live = [space for space in spaces if space.size > 0]
        for space in self._live:
            space.permutation = _LazyPermutation(space.size, rng)

    @property
    def exhausted(self) -> bool:
        return not self._live

    def draw(self, seen: set[str]) -> Query | None:
        """One new query, or ``None`` when every template of the category is used up."""
        while self._live:
            space = self._live[self._rng.randrange(len(self._live))]
            assert space.permutation is not None
            index = space.permutation.next()
            if index is None:
                self._live.remove(space)
                continue
            text = space.render(index)
            if text is None:
                continue
            key = normalize_query(text)
            if not key or key in seen:
                continue
            seen.add(key)
            return Query(text=text, category=self.category, source=SYNTHETIC)
        return None


def synthesize(
    channels: ChannelSet,
    n: int,
    *,
    seed: int,
    mix: Mapping[str, float] | None = None,
    exclude: Iterable[str] = frozenset(),
) -> SynthesisResult:
    """:func:`synthesize_queries` with a report of per-category targets, production and exhausted categories."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    shares = resolve_mix(channels, mix)
    targets = largest_remainder(n, shares)
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    seen = {normalize_query(text) for text in exclude}
    spaces = _category_spaces(channels)
    samplers = {category: _CategorySampler(category, spaces[category], rng) for category in shares}
    produced = dict.fromkeys(shares, 0)
    queries: list[Query] = []
    exhausted: list[str] = []

    def take(category: str) -> bool:
        query = samplers[category].draw(seen)
        if query is None:
            if category not in exhausted:
                exhausted.append(category)
            return False
        queries.append(query)
        produced[category] += 1
        return True

    missing = 0
    for category, target in targets.items():
        for _ in range(target):
            if not take(category):
                missing += target - produced[category]
                break
    # Fill a shortfall round-robin from the categories the mix uses that still have room.
    donors = [category for category, share in shares.items() if share > 0 and not samplers[category].exhausted]
    while missing and donors:
        for category in list(donors):
            if not missing:
                break
            if take(category):
                missing -= 1
            else:
                donors.remove(category)
    if exhausted:
        logger.warning(
            "query categories exhausted; filled from others",
            extra={"exhausted": exhausted, "targets": targets, "produced": produced, "shortfall": missing},
        )
    rng.shuffle(queries)
    return SynthesisResult(queries=queries, targets=targets, produced=produced, exhausted=exhausted)


def synthesize_queries(
    channels: ChannelSet,
    n: int,
    *,
    seed: int,
    mix: Mapping[str, float] | None = None,
    exclude: Iterable[str] = frozenset(),
) -> list[Query]:
    """``n`` distinct synthetic queries, deterministic for ``seed``, in shuffled order.

    Per-category counts follow ``mix`` (default :func:`default_mix`) exactly, by largest-remainder rounding.
    Texts are unique by :func:`normalize_query` and never collide with ``exclude`` (raw or normalized texts).
    Built-in templates × vocabulary cover the channels named ``visual``, ``audio``, ``transcription`` and
    ``metadata`` (over 100,000 distinct queries per category). A custom channel has no built-in vocabulary: its
    queries are its configured ``examples`` and the short phrases of its ``description`` ("mood: happy, sad or
    tense" gives "happy", "sad", "tense") inside generic templates ("clips showing ...", "... footage", "...
    with ..."), so its space is small (hundreds to a few thousand) and good ``examples`` matter. When a
    category runs out, the rest is drawn from the other categories of the mix (see :func:`synthesize` for the
    report); when everything runs out, fewer than ``n`` queries are returned.
    """
    return synthesize(channels, n, seed=seed, mix=mix, exclude=exclude).queries


# ---------------------------------------------------------------------------------------------------------
# User query files
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UserQueries:
    """Queries read from a user's file, and every skipped line counted by reason.

    ``total_lines`` counts data lines (for CSV: rows after the header); it always equals
    ``len(queries) + blank + comments + invalid + too_long + duplicates``. ``rejected`` counts the ``invalid`` and
    ``too_long`` lines by reason (``control_characters``, ``no_visible_text``, ``not_json`` ...);
    ``format_characters_stripped`` the accepted lines that lost invisible format characters.
    """

    queries: list[Query]
    total_lines: int
    blank: int
    invalid: int
    too_long: int
    duplicates: int
    invalid_samples: list[str]
    comments: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)
    format_characters_stripped: int = 0

    def to_stats(self) -> dict[str, object]:
        """JSON-serialisable counts (for the dataset manifest)."""
        return {
            "accepted": len(self.queries),
            "total_lines": self.total_lines,
            "blank": self.blank,
            "comments": self.comments,
            "invalid": self.invalid,
            "too_long": self.too_long,
            "duplicates": self.duplicates,
            "rejected": dict(self.rejected),
            "format_characters_stripped": self.format_characters_stripped,
            "invalid_samples": list(self.invalid_samples),
        }


class _Collector:
    def __init__(self) -> None:
        self.queries: list[Query] = []
        self.seen: set[str] = set()
        self.total = self.blank = self.comments = self.invalid = self.too_long = self.duplicates = 0
        self.samples: list[str] = []
        self.rejected: Counter[str] = Counter()
        self.format_stripped = 0

    def reject(self, line: int, reason: str, kind: Literal["invalid", "too_long"], code: str) -> None:
        if kind == "invalid":
            self.invalid += 1
        else:
            self.too_long += 1
        self.rejected[code] += 1
        if len(self.samples) < MAX_INVALID_SAMPLES:
            self.samples.append(f"line {line}: {reason}"[:300])

    def add(self, line: int, text: str, category: str | None) -> None:  # noqa: PLR0911 - one return per rejection
        if has_control_characters(text):
            # Never sent to the teacher: a control character is no part of a search query (and may be an attack
            # on the prompt or a corrupt export). The sample shows it escaped.
            self.reject(line, f"query {text[:80]!r} holds control characters", "invalid", REJECTED_CONTROL_CHARACTERS)
            return
        stripped = strip_format_characters(text)
        cleaned = _clean_text(stripped)
        if not cleaned:
            self.reject(line, "empty query", "invalid", "empty")
            return
        if not has_visible_text(cleaned):
            self.reject(line, f"query {text[:80]!r} has no visible text", "invalid", REJECTED_NO_VISIBLE_TEXT)
            return
        if len(cleaned) > MAX_QUERY_CHARS:
            self.reject(line, f"query has {len(cleaned)} characters; at most {MAX_QUERY_CHARS}", "too_long", "too_long")
            return
        key = normalize_query(cleaned)
        if not key:
            self.reject(
                line, f"query {cleaned[:80]!r} has no text besides punctuation", "invalid", REJECTED_NO_VISIBLE_TEXT
            )
            return
        if category is not None:
            category = strip_format_characters(category).strip()
            if category.lower().startswith(RESERVED_CATEGORY_PREFIX):
                self.reject(line, f"category {category!r} is reserved", "invalid", "reserved_category")
                return
            if has_control_characters(category):
                self.reject(line, "category holds control characters", "invalid", REJECTED_CONTROL_CHARACTERS)
                return
            if len(category) > MAX_CATEGORY_CHARS:
                self.reject(
                    line, f"category is longer than {MAX_CATEGORY_CHARS} characters", "invalid", "category_too_long"
                )
                return
        if stripped != text:
            self.format_stripped += 1
        if key in self.seen:
            self.duplicates += 1
            return
        self.seen.add(key)
        self.queries.append(Query(text=cleaned, category=category or USER_CATEGORY, source=USER))

    def result(self) -> UserQueries:
        return UserQueries(
            queries=self.queries,
            total_lines=self.total,
            blank=self.blank,
            invalid=self.invalid,
            too_long=self.too_long,
            duplicates=self.duplicates,
            invalid_samples=self.samples,
            comments=self.comments,
            rejected=dict(self.rejected),
            format_characters_stripped=self.format_stripped,
        )


def _lines(text: str) -> list[str]:
    """Physical lines ("\\n", "\\r\\n" or "\\r"), without a phantom empty line after a final newline."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _decode(body: bytes, key: str) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{key} is not UTF-8 text: invalid byte at offset {exc.start}") from exc


def parse_user_queries(body: bytes, *, key: str) -> UserQueries:
    """Read a user's query file; the format follows the object key's extension.

    * ``.txt``: one query per line; lines starting with ``#`` are comments.
    * ``.jsonl``: one JSON object per line with a ``"query"`` string and an optional ``"category"`` string.
    * ``.csv``: a header row with a ``query`` column (any case) and an optional ``category`` column.

    UTF-8, a byte-order mark is tolerated (anything else raises ``ValueError``). Queries are trimmed and their
    whitespace collapsed; a query longer than :data:`MAX_QUERY_CHARS` is skipped as ``too_long``; repeats (by
    :func:`normalize_query`, first kept) are ``duplicates``; blank lines are ``blank``. Nothing is dropped
    without being counted. An unknown extension, or a CSV without a ``query`` column, raises ``ValueError``.
    """
    lowered = key.lower()
    extension = next((ext for ext in USER_FILE_EXTENSIONS if lowered.endswith(ext)), None)
    if extension is None:
        raise ValueError(
            f"unsupported query file {key!r}: use one of {', '.join(USER_FILE_EXTENSIONS)} "
            '(one query per line, JSON lines with a "query" field, or CSV with a query column)'
        )
    text = _decode(body, key)
    collector = _Collector()
    if extension == ".txt":
        _read_txt(text, collector)
    elif extension == ".jsonl":
        _read_jsonl(text, collector)
    else:
        _read_csv(text, key, collector)
    return collector.result()


def _read_txt(text: str, collector: _Collector) -> None:
    for number, line in enumerate(_lines(text), start=1):
        collector.total += 1
        stripped = line.strip()
        if not stripped:
            collector.blank += 1
        elif stripped.startswith("#"):
            collector.comments += 1
        else:
            collector.add(number, stripped, None)


def _read_jsonl(text: str, collector: _Collector) -> None:
    for number, line in enumerate(_lines(text), start=1):
        collector.total += 1
        if not line.strip():
            collector.blank += 1
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            collector.reject(number, f"not valid JSON ({exc.msg})", "invalid", "not_json")
            continue
        if not isinstance(item, dict):
            collector.reject(number, f"expected a JSON object, got {type(item).__name__}", "invalid", "not_an_object")
            continue
        query = item.get("query")
        if not isinstance(query, str):
            collector.reject(number, 'missing "query" string', "invalid", "missing_query")
            continue
        category = item.get("category")
        if category is not None and not isinstance(category, str):
            collector.reject(number, '"category" must be a string', "invalid", "bad_category")
            continue
        collector.add(number, query, category)


def _read_csv(text: str, key: str, collector: _Collector) -> None:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    for row in reader:
        if header is None:
            if not any(cell.strip() for cell in row):
                continue  # blank lines before the header
            header = [cell.strip().lower() for cell in row]
            if "query" not in header:
                raise ValueError(f"{key}: the CSV header must have a 'query' column; found {row}")
            query_at = header.index("query")
            category_at = header.index("category") if "category" in header else None
            continue
        collector.total += 1
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            collector.blank += 1
            continue
        if query_at >= len(row):
            collector.reject(
                number, f"row has {len(row)} fields; the query column is number {query_at + 1}", "invalid", "short_row"
            )
            continue
        category = row[category_at] if category_at is not None and category_at < len(row) else None
        collector.add(number, row[query_at], category or None)


# ---------------------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------------------
def plan_queries(
    channels: ChannelSet,
    *,
    n_total: int,
    seed: int,
    user: Sequence[Query] | None,
    mix_user: bool,
    mix: Mapping[str, float] | None = None,
    max_user_share: float = DEFAULT_MAX_USER_SHARE,
) -> list[Query]:
    """The queries to label: the user's first, then synthetic ones, ``n_total`` in all when possible.

    * No user queries: ``n_total`` synthetic queries.
    * ``mix_user=False``: only the user's queries when they are enough (a seeded sample of ``n_total`` of them,
      in file order, if there are more); otherwise all of them topped up with synthetic queries.
    * ``mix_user=True``: the user's queries fill at most ``max_user_share`` of ``n_total`` (a seeded sample
      if there are more; all of them if the synthesizer cannot fill the rest); synthetic queries fill the rest.

    User queries are de-duplicated by :func:`normalize_query` and synthetic ones never repeat them. When not
    enough queries exist the result is shorter than ``n_total``: the caller reports the shortfall.
    """
    if n_total < 0:
        raise ValueError(f"n_total must be >= 0, got {n_total}")
    if not 0.0 <= max_user_share <= 1.0:
        raise ValueError(f"max_user_share must be within 0..1, got {max_user_share}")
    unique: list[Query] = []
    seen: set[str] = set()
    for query in user or ():
        key = normalize_query(query.text)
        if key and key not in seen:
            seen.add(key)
            unique.append(query)
    rng = random.Random(f"plan:{seed}")  # noqa: S311 - reproducible sampling, not security

    def sample(items: list[Query], k: int) -> list[Query]:
        if k >= len(items):
            return list(items)
        keep = sorted(rng.sample(range(len(items)), k))
        return [items[index] for index in keep]

    if not mix_user and len(unique) >= n_total:
        return sample(unique, n_total)
    user_quota = len(unique) if not mix_user else min(len(unique), math.floor(n_total * max_user_share))
    chosen = sample(unique, user_quota)
    synthetic = synthesize_queries(
        channels, n_total - len(chosen), seed=seed, mix=mix, exclude={normalize_query(q.text) for q in unique}
    )
    if mix_user and len(chosen) + len(synthetic) < n_total and len(unique) > len(chosen):
        # The synthesizer ran short: use more of the user's queries rather than fewer queries in all.
        chosen_keys = {normalize_query(q.text) for q in chosen}
        extra = [q for q in unique if normalize_query(q.text) not in chosen_keys]
        chosen += extra[: n_total - len(chosen) - len(synthetic)]
    return chosen + synthetic
