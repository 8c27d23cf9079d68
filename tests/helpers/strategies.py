"""Hypothesis strategies for untrusted input: arbitrary JSON, dicts that look like events,
valid Segment and PostHog events, valid launch specs, and any value with one part replaced by
arbitrary JSON. Event times range over the whole calendar (year 1 to 9999, with UTC offsets);
the `safe_` ones stay within 1900-2200, and launch times within the 2000-2100 specs accept.
Shared by the property tests of the parser and spec model and the API fuzzing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from app.ingest import EVENT_TYPES
from pipelines.launch import CONVERSION_METRICS, DURATION_METRICS, RATE_METRICS

SAFE_MIN, SAFE_MAX = datetime(1900, 1, 1), datetime(2200, 1, 1)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson.loads can return
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
safe_naive = st.datetimes(min_value=SAFE_MIN, max_value=SAFE_MAX)
safe_aware = st.datetimes(min_value=SAFE_MIN, max_value=SAFE_MAX, timezones=offsets)
any_aware = st.datetimes(timezones=offsets)  # the whole range datetime allows
safe_times = safe_naive | safe_aware
# Launch specs accept times between 2000 and 2100 (UTC); a day's margin keeps every offset inside.
spec_times = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=offsets)
any_times = st.datetimes() | any_aware
time_values = any_times.map(datetime.isoformat) | st.text(max_size=25) | json_scalars
ids = st.text(min_size=1, max_size=20) | st.integers(min_value=-(2**63), max_value=2**63 - 1)
properties = st.dictionaries(st.text(max_size=12), json_values, max_size=5)

eventish = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from([*sorted(EVENT_TYPES), "bogus", ""]) | json_values,
        "event": st.text(max_size=20) | json_values,
        "name": st.text(max_size=20) | json_values,
        "userId": ids | json_values,
        "anonymousId": ids | json_values,
        "previousId": ids | json_values,
        "groupId": ids | json_values,
        "messageId": ids | json_values,
        "properties": properties | json_values,
        "traits": properties | json_values,
        "context": st.fixed_dictionaries({}, optional={"traits": properties | json_values}) | json_values,
        "timestamp": time_values,
        "originalTimestamp": time_values,
        "sentAt": time_values,
        "receivedAt": time_values,
        # PostHog's vocabulary
        "distinct_id": ids | json_values,
        "uuid": ids | json_values,
        "$set": properties | json_values,
        "sent_at": time_values,
        "offset": st.integers(min_value=-(2**63), max_value=2**63)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=5),
    },
)
"""Dicts that look like events, with each field valid, wrong-typed or arbitrary."""


raw_events = st.lists(json_values | eventish, max_size=8)


@st.composite
def segment_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid Segment-spec event of any type."""
    kind = draw(st.sampled_from(sorted(EVENT_TYPES)))
    user = draw(st.none() | ids) if kind != "alias" else draw(ids)
    anonymous = draw(ids) if user is None else draw(st.none() | ids)
    event: dict[str, Any] = {"type": kind}
    if user is not None:
        event["userId"] = user
    if anonymous is not None:
        event["anonymousId"] = anonymous
    if kind == "alias":
        event["previousId"] = draw(ids)
    if kind == "track":
        event["event"] = draw(st.text(min_size=1, max_size=30))
    elif draw(st.booleans()):
        event["name"] = draw(st.text(max_size=30))
    optional = {
        "messageId": ids,
        "properties": properties,
        "traits": properties,
        "context": st.fixed_dictionaries({}, optional={"traits": properties, "ip": st.text(max_size=15)}),
        "timestamp": safe_times.map(datetime.isoformat),
        "sentAt": safe_times.map(datetime.isoformat),
    }
    for field, strategy in optional.items():
        if draw(st.booleans()):
            event[field] = draw(strategy)
    return event


@st.composite
def posthog_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid PostHog capture event for a custom (track) event."""
    event: dict[str, Any] = {
        "event": draw(st.text(min_size=1, max_size=30).filter(lambda s: not s.startswith("$"))),
        "distinct_id": draw(ids),
        # properties.$set holds traits: an object or nothing (anything else is rejected).
        "properties": draw(properties.map(lambda p: {k: v for k, v in p.items() if k != "$set"})),
    }
    for field, strategy in {"uuid": ids, "timestamp": safe_times.map(datetime.isoformat)}.items():
        if draw(st.booleans()):
            event[field] = draw(strategy)
    return event


scalars = (
    st.text(max_size=15) | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.booleans()
)
where = st.dictionaries(
    st.text(min_size=1, max_size=15), scalars | st.lists(scalars, min_size=1, max_size=3), max_size=3
)


@st.composite
def matchers(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["track", "page", "screen", "identify"]))
    event = (
        draw(st.text(min_size=1, max_size=20))
        if kind == "track"
        else draw(st.none() | st.text(min_size=1, max_size=20))
    )
    matcher: dict[str, Any] = {"type": kind, "where": draw(where)}
    if event is not None:
        matcher["event"] = event
    return matcher


slugs = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z")
rate_metrics = st.sampled_from(RATE_METRICS) | st.integers(1, 99).map(lambda n: f"week_{n}_retention")


@st.composite
def launch_specs(draw: st.DrawFn, times: st.SearchStrategy[datetime] = spec_times) -> dict[str, Any]:
    """A valid launch spec as JSON, every rule of the model respected."""
    window = draw(st.integers(min_value=1, max_value=366))
    converted = draw(st.lists(matchers(), max_size=2))
    kpis = []
    for kpi_id in draw(st.lists(slugs, max_size=4, unique=True)):
        metric = draw(rate_metrics | st.sampled_from(DURATION_METRICS))
        if metric in CONVERSION_METRICS and not converted:
            metric = "adoption_rate"
        upper = 1.0 if metric not in DURATION_METRICS else 1e6
        kpis.append(
            {
                "id": kpi_id,
                "metric": metric,
                "comparator": draw(st.sampled_from([">=", "<="])),
                "target": draw(st.floats(min_value=0.0, max_value=upper)),
                "min_sample": draw(st.integers(min_value=1, max_value=10**6)),
                "by_day": draw(st.none() | st.integers(min_value=1, max_value=window)),
            }
        )
    return {
        "key": draw(slugs),
        "name": draw(st.text(min_size=1, max_size=200)),
        "owner": draw(st.text(min_size=1, max_size=200)),
        "description": draw(st.text(max_size=50)),
        "launched_at": draw(times).isoformat(),
        "window_days": window,
        "audience": {"identified_only": draw(st.booleans()), "where": draw(where)},
        "signals": {
            "exposed": draw(st.lists(matchers(), min_size=1, max_size=3)),
            "used": draw(st.lists(matchers(), min_size=1, max_size=3)),
            "converted": converted,
        },
        "channel_property": draw(st.text(min_size=1, max_size=20)),
        "announcements": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"channel": st.text(min_size=1, max_size=20), "at": times.map(datetime.isoformat)},
                    optional={"note": st.text(max_size=20)},
                ),
                max_size=3,
            )
        ),
        "kpis": kpis,
    }


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> Any:
    """`base` with the value at one random path (possibly the root) replaced by any JSON."""
    value = draw(base)
    replacement = draw(json_values)
    if not isinstance(value, dict | list) or draw(st.integers(0, 9)) == 0:
        return replacement
    path: list[Any] = []
    node: Any = value
    while isinstance(node, dict | list) and node and draw(st.booleans()):
        key = (
            draw(st.sampled_from(list(node)))
            if isinstance(node, dict)
            else draw(st.integers(0, len(node) - 1))
        )
        path.append(key)
        node = node[key]
    if not path:
        return {**value, draw(st.text(max_size=10)): replacement} if isinstance(value, dict) else replacement
    target = value
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = replacement
    return value
