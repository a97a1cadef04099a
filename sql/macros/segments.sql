-- The dimension of a segment row built with grouping sets over (platform), (channel) and ()
-- (CONTRACT §3: daily_metrics, funnel_steps, cohorts). Call it as
-- segment_dimension(grouping(platform) = 0, grouping(channel) = 0); the row's segment is then
-- coalesce(platform, channel, 'all'), since the column not grouped on is NULL.
create or replace temp macro segment_dimension(by_platform, by_channel) as
    case when by_platform then 'platform' when by_channel then 'channel' else 'all' end;
