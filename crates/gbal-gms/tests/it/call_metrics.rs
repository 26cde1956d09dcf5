//! Every submit is measured: a duration histogram and a counter, by transport and outcome.

use gbal_core::{Gms, GmsError, Outcome, Submission};
use gbal_gms::call_metrics::{CALL_DURATION, CALLS};
use gbal_gms::{Dataset, EmbeddedSimulator, NctsXmlGms};
use gbal_testkit::metrics::MetricsCapture;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::defaults;
use crate::support::{RecordingSink, context, fast, query, url};

/// What an answer is, in the words of the metric's `outcome` label.
fn kind(answer: &Result<Submission, GmsError>) -> &'static str {
    match answer {
        Ok(Submission::Answered(Outcome::Success(_))) => "success",
        Ok(Submission::Answered(Outcome::FunctionalError { .. })) => "functional_error",
        Ok(Submission::Answered(Outcome::XmlError { .. })) => "xml_error",
        Ok(Submission::Accepted) => "accepted",
        Err(GmsError::Unavailable { .. }) => "unavailable",
        Err(GmsError::Garbled(_)) => "garbled",
        Err(GmsError::Rejected { .. }) => "rejected",
        Err(_) => "another error",
    }
}

#[tokio::test(flavor = "current_thread")]
async fn every_submit_is_measured_by_transport_and_outcome() {
    let recorder = MetricsCapture::default();
    let _guard = recorder.install();

    let (sink, _) = RecordingSink::new();
    let sim = EmbeddedSimulator::new(defaults::embedded(Dataset::sandbox()), sink);
    let tin = Some("GB954131533000");
    let mut answers = Vec::new();
    for grn_and_code in [
        ("26GB0000010000012", "AC01"),
        ("26GB0000010000012", "ZZ99"),
        ("26GB0000090000037", "AC01"),
        ("26GB0000090000011", "AC01"),
        ("26GB0000090000045", "AC01"),
        ("26GB0000090000053", "AC01"),
    ] {
        let (grn, code) = grn_and_code;
        answers.push(kind(&sim.submit(&query(grn, tin, code), &context()).await));
    }
    let expected = [
        "success",
        "functional_error",
        "xml_error",
        "accepted",
        "unavailable",
        "garbled",
    ];
    assert_eq!(answers, expected, "the sandbox's answers (docs/sandbox.md)");
    assert_eq!(
        recorder.label_values(CALLS, ("transport", "simulator"), "outcome"),
        expected
    );
    assert_eq!(
        recorder.label_values(CALL_DURATION, ("transport", "simulator"), "outcome"),
        expected
    );

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400))
        .mount(&server)
        .await;
    let gms = NctsXmlGms::new(defaults::ncts_xml(fast(url(*server.address(), "/m"), "t")))
        .expect("client");
    let answer = gms
        .submit(&query("26GB0000010000012", None, "AC01"), &context())
        .await;
    assert_eq!(kind(&answer), "rejected", "{answer:?}");
    assert_eq!(
        recorder.label_values(CALLS, ("transport", "ncts-xml"), "outcome"),
        ["rejected"]
    );
    assert_eq!(
        recorder.label_values(CALL_DURATION, ("transport", "ncts-xml"), "outcome"),
        ["rejected"]
    );
}
