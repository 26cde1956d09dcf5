//! Every submit is measured: a duration histogram and a counter, by transport and outcome.

use gbal_core::Gms;
use gbal_gms::call_metrics::{CALL_DURATION, CALLS};
use gbal_gms::{Dataset, EmbeddedConfig, EmbeddedSimulator, NctsXmlConfig, NctsXmlGms};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{MetricsCapture, RecordingSink, context, fast, query, url};

#[tokio::test(flavor = "current_thread")]
async fn every_submit_is_measured_by_transport_and_outcome() {
    let recorder = MetricsCapture::default();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let (sink, _) = RecordingSink::new();
    let sim = EmbeddedSimulator::new(EmbeddedConfig::new(Dataset::sandbox()), sink);
    let tin = Some("GB954131533000");
    let _ = sim
        .submit(&query("26GB0000010000012", tin, "AC01"), &context())
        .await;
    let _ = sim
        .submit(&query("26GB0000010000012", tin, "ZZ99"), &context())
        .await;
    let _ = sim
        .submit(&query("26GB0000090000037", tin, "AC01"), &context())
        .await;
    let _ = sim
        .submit(&query("26GB0000090000011", tin, "AC01"), &context())
        .await;
    let _ = sim
        .submit(&query("26GB0000090000045", tin, "AC01"), &context())
        .await;
    let _ = sim
        .submit(&query("26GB0000090000053", tin, "AC01"), &context())
        .await;
    let expected = [
        "success",
        "functional_error",
        "xml_error",
        "accepted",
        "unavailable",
        "garbled",
    ];
    assert_eq!(recorder.outcomes(CALLS, "simulator"), expected);
    assert_eq!(recorder.outcomes(CALL_DURATION, "simulator"), expected);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400))
        .mount(&server)
        .await;
    let gms = NctsXmlGms::new(NctsXmlConfig::new(fast(url(*server.address(), "/m"), "t")))
        .expect("client");
    let _ = gms
        .submit(&query("26GB0000010000012", None, "AC01"), &context())
        .await;
    assert_eq!(recorder.outcomes(CALLS, "ncts-xml"), ["rejected"]);
    assert_eq!(recorder.outcomes(CALL_DURATION, "ncts-xml"), ["rejected"]);
}
