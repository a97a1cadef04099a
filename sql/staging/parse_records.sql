-- Validate raw_records of one arrival day (CONTRACT §2): each record gets either clean event
-- columns or exactly one quarantine reason. Aliases are tried in the contract's order.

-- JSON null counts as absent. (json_transform already gives SQL NULL for it; the text test
-- keeps that true without parsing the value again.)
create or replace temp macro present(j) as case when j::varchar = 'null' then null else j end;

-- Text of a scalar JSON value ('' counts as absent); NULL for objects and arrays.
-- `kind` is json_type(j), computed once by the caller.
create or replace temp macro scalar_text(j, kind) as
    case
        when j is null or kind in ('OBJECT', 'ARRAY', 'NULL') then null
        else nullif(j ->> '$', '')
    end;

-- Epoch numbers: milliseconds when the magnitude says so (1e11 s is the year 5138).
create or replace temp macro epoch_to_ts(v) as
    try(make_timestamp(cast(case when abs(v) >= 1e11 then v * 1000 else v * 1000000 end as bigint)));

-- The record is decoded into a struct of the fields the contract names (a MAP of every key
-- costs 3-4x more, so it is built only for records that carry other top-level keys), and the
-- properties object into a struct of the known properties.
create or replace temp macro record_fields() as
    '{"user_id": "JSON", "distinct_id": "JSON", "userId": "JSON", "anonymous_id": "JSON",
      "anonymousId": "JSON", "event": "JSON", "event_type": "JSON", "event_name": "JSON",
      "name": "JSON", "timestamp": "JSON", "time": "JSON", "ts": "JSON", "event_time": "JSON",
      "originalTimestamp": "JSON", "event_id": "JSON", "uuid": "JSON", "messageId": "JSON",
      "insert_id": "JSON", "$insert_id": "JSON", "properties": "JSON"}';

create or replace temp macro is_record_field(k) as list_contains(
    [
        'user_id', 'distinct_id', 'userId', 'anonymous_id', 'anonymousId',
        'event', 'event_type', 'event_name', 'name',
        'timestamp', 'time', 'ts', 'event_time', 'originalTimestamp',
        'event_id', 'uuid', 'messageId', 'insert_id', '$insert_id', 'properties'
    ],
    k
);

create or replace temp table parsed_records as
with docs as (
    select
        *,
        case
            -- NULL for anything but a JSON object.
            when read_error is null and raw_bytes <= 1048576 and starts_with(ltrim(raw), '{')
                then try(json_transform(raw, record_fields()))
        end as doc
    from raw_records
),
fields as (
    select
        *,
        coalesce(
            present(doc.user_id), present(doc.distinct_id), present(doc.userId),
            present(doc.anonymous_id), present(doc.anonymousId)
        ) as user_j,
        coalesce(
            present(doc.event), present(doc.event_type), present(doc.event_name), present(doc.name)
        ) as event_j,
        coalesce(
            present(doc.timestamp), present(doc.time), present(doc.ts),
            present(doc.event_time), present(doc.originalTimestamp)
        ) as time_j,
        coalesce(
            present(doc.event_id), present(doc.uuid), present(doc.messageId),
            present(doc.insert_id), present(doc."$insert_id")
        ) as id_j,
        present(doc.properties) as props_j,
        -- Top-level keys that are not record fields are properties too (CSV/Parquet columns,
        -- or flat JSON records).
        case
            when doc is not null
                and len(list_filter(json_keys(raw), lambda k: not is_record_field(k))) > 0
                then map_from_entries(list_filter(
                    map_entries(json_transform(raw, '"MAP(VARCHAR, JSON)"')),
                    lambda e: e.value is not null and e.value::varchar <> 'null'
                        and not is_record_field(e.key)
                ))
        end as extras
    from docs
),
kinds as (
    -- Each JSON type once: json_type parses its argument on every call.
    select
        *,
        json_type(user_j) as user_kind,
        json_type(event_j) as event_kind,
        json_type(time_j) as time_kind,
        json_type(id_j) as id_kind,
        json_type(props_j) as props_kind
    from fields
),
objects as (
    select
        *,
        case
            when props_j is null then '{}'::json
            when props_kind = 'OBJECT' then props_j
            -- A CSV/Parquet cell can only hold the object as JSON text.
            when tabular and props_kind = 'VARCHAR' and json_valid(props_j ->> '$')
                 and json_type((props_j ->> '$')::json) = 'OBJECT'
                then (props_j ->> '$')::json
        end as props_obj
    from kinds
),
props as (
    select
        *,
        case
            when props_obj is null then null
            when extras is null or cardinality(extras) = 0 then props_obj
            else json_merge_patch(to_json(extras), props_obj)
        end as properties
    from objects
),
known as (
    select
        *,
        json_transform(
            properties,
            '{"platform": "JSON", "$os": "JSON", "channel": "JSON", "utm_source": "JSON",
              "campaign": "JSON", "utm_campaign": "JSON", "revenue": "JSON", "$revenue": "JSON",
              "country": "JSON"}'
        ) as p
    from props
),
lifted as (
    select
        *,
        coalesce(present(p.platform), present(p."$os")) as platform_j,
        coalesce(present(p.channel), present(p.utm_source)) as channel_j,
        coalesce(present(p.campaign), present(p.utm_campaign)) as campaign_j,
        present(p.country) as country_j,
        coalesce(present(p.revenue), present(p."$revenue")) as revenue_j
    from known
),
lifted_kinds as (
    select
        *,
        json_type(platform_j) as platform_kind,
        json_type(channel_j) as channel_kind,
        json_type(campaign_j) as campaign_kind,
        json_type(country_j) as country_kind,
        json_type(revenue_j) as revenue_kind,
        case when time_kind = 'VARCHAR' then trim(time_j ->> '$') end as time_text
    from lifted
),
typed as (
    select
        *,
        case
            when time_kind in ('UBIGINT', 'BIGINT', 'DOUBLE')
                then epoch_to_ts((time_j ->> '$')::double)
            -- Epoch numbers as text. (The cast fails fast on ISO text, sparing it the pattern.)
            when try_cast(time_text as double) is not null
                and regexp_full_match(time_text, '-?[0-9]+(\.[0-9]+)?')
                then epoch_to_ts(try_cast(time_text as double))
            else try_cast(try_cast(time_text as timestamptz) as timestamp)
        end as ts,
        case
            when revenue_kind in ('UBIGINT', 'BIGINT', 'DOUBLE')
                then (revenue_j ->> '$')::double
            when revenue_kind = 'VARCHAR' then try_cast(trim(revenue_j ->> '$') as double)
        end as revenue_value,
        case
            when user_kind = 'VARCHAR' then nullif(trim(user_j ->> '$'), '')
        end as user_text,
        case
            when event_kind = 'VARCHAR' then nullif(trim(event_j ->> '$'), '')
        end as event_text
    from lifted_kinds
),
judged as (
    select
        *,
        case
            when read_error is not null then 'malformed_record'
            when raw_bytes > 1048576 then 'oversized_record'
            when doc is null then 'malformed_record'
            when user_j is null or (user_kind = 'VARCHAR' and user_text is null)
                then 'missing_user_id'
            when event_j is null or (event_kind = 'VARCHAR' and event_text is null)
                then 'missing_event'
            when time_j is null or time_text = ''
                then 'missing_timestamp'
            when user_kind not in ('VARCHAR', 'UBIGINT', 'BIGINT')
                or event_kind <> 'VARCHAR'
                or time_kind not in ('VARCHAR', 'UBIGINT', 'BIGINT', 'DOUBLE')
                or (id_j is not null and id_kind not in ('VARCHAR', 'UBIGINT', 'BIGINT'))
                or props_obj is null
                or platform_kind in ('OBJECT', 'ARRAY') or channel_kind in ('OBJECT', 'ARRAY')
                or campaign_kind in ('OBJECT', 'ARRAY') or country_kind in ('OBJECT', 'ARRAY')
                then 'invalid_type'
            -- DuckDB reads 'infinity' as a timestamp; no event happens there.
            when ts is null or not isfinite(ts) then 'invalid_timestamp'
            when ts > $arrival_date::timestamp + interval 2 day then 'future_timestamp'
            when revenue_j is not null and (revenue_value is null or not isfinite(revenue_value))
                then 'invalid_revenue'
        end as reason
    from typed
)
select
    source_file,
    line_no,
    reason,
    case reason
        when 'malformed_record' then coalesce(read_error, 'not one JSON object (unparseable, not an object, or a key repeated)')
        when 'oversized_record' then 'record of ' || raw_bytes || ' bytes is over the 1 MiB limit; raw keeps the first 64 KiB'
        when 'missing_user_id' then 'no user id (user_id, distinct_id, userId, anonymous_id, anonymousId)'
        when 'missing_event' then 'no event name (event, event_type, event_name, name)'
        when 'missing_timestamp' then 'no timestamp (timestamp, time, ts, event_time, originalTimestamp)'
        when 'invalid_type' then 'a field has the wrong JSON type: '
            || concat_ws(', ',
                case when user_kind not in ('VARCHAR', 'UBIGINT', 'BIGINT') then 'user id is ' || user_kind end,
                case when event_kind <> 'VARCHAR' then 'event is ' || event_kind end,
                case when time_kind not in ('VARCHAR', 'UBIGINT', 'BIGINT', 'DOUBLE') then 'timestamp is ' || time_kind end,
                case when id_j is not null and id_kind not in ('VARCHAR', 'UBIGINT', 'BIGINT') then 'event id is ' || id_kind end,
                case when props_obj is null then 'properties is ' || props_kind || ', not an object' end,
                case when platform_kind in ('OBJECT', 'ARRAY') or channel_kind in ('OBJECT', 'ARRAY') or campaign_kind in ('OBJECT', 'ARRAY') or country_kind in ('OBJECT', 'ARRAY') then 'platform/channel/campaign/country must be text' end
            )
        when 'invalid_timestamp' then 'timestamp ' || (time_j::varchar) || ' is not ISO 8601 or epoch seconds/milliseconds'
        when 'future_timestamp' then 'timestamp ' || strftime(ts, '%Y-%m-%dT%H:%M:%S') || 'Z is more than 1 day after the end of arrival day ' || $arrival_date::varchar
        when 'invalid_revenue' then 'revenue ' || (revenue_j::varchar) || ' is not a number'
    end as detail,
    case when reason = 'oversized_record' then left(raw, 65536) else raw end as raw,
    case
        when reason is null then coalesce(
            scalar_text(id_j, id_kind),
            md5(concat_ws(chr(31), coalesce(user_text, user_j ->> '$'), event_text,
                          strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'), properties::varchar))
        )
    end as event_id,
    coalesce(user_text, user_j ->> '$') as user_id,
    event_text as event,
    ts,
    ts::date as event_date,
    scalar_text(platform_j, platform_kind) as platform,
    scalar_text(channel_j, channel_kind) as channel,
    scalar_text(campaign_j, campaign_kind) as campaign,
    scalar_text(country_j, country_kind) as country,
    revenue_value as revenue,
    properties
from judged;
