//! The attack battery, short: each attack against its own `gbal serve` (the debug binary),
//! with short configured timeouts. `cargo bench -p gbal --bench attack` runs the same attacks
//! longer against the release binary (figures in docs/reliability.md).

mod battery;

use battery::Scale;

#[tokio::test(flavor = "multi_thread")]
async fn method_path_and_header_floods_without_a_token_keep_metrics_and_memory_bounded() {
    battery::label_flood(Scale::short()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn half_sent_headers_are_closed_within_the_header_timeout_on_both_listeners() {
    battery::half_sent_headers(Scale::short()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_flood_past_the_cap_waits_and_a_caller_is_served_after_it() {
    battery::connection_flood(Scale::short()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_callers_slow_bodies_do_not_stop_other_callers() {
    battery::slow_bodies(Scale::short()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_callers_get_polling_flood_is_throttled_and_others_are_not() {
    battery::get_polling_flood(Scale::short()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_and_bodies_and_deep_nesting_are_refused() {
    battery::oversized_input().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_is_not_served_on_either_listener() {
    battery::http2_not_served().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_the_case_of_a_grn_within_the_minute_gets_429_in_v1() {
    battery::grn_case_changes().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_whose_subject_shows_nothing_is_refused() {
    battery::invisible_caller_ids().await;
}
