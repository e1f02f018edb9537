//! The query text, the answer's parsing, and a client against a loopback server that
//! misbehaves in each of the ways a VictoriaMetrics can.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

#[test]
fn a_device_name_is_quoted_so_that_it_selects_only_itself() {
    assert_eq!(quote("vake-atm-1"), r#""vake-atm-1""#);
    assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    // `"} or vector(1) or {x="` stays inside the string.
    assert_eq!(
        quote(r#"x"} or vector(1) or {y=""#),
        r#""x\"} or vector(1) or {y=\"""#
    );
    assert_eq!(quote("a\nb\tc\u{1}"), r#""a\nb\tc\u0001""#);
    assert_eq!(quote("თბილისი"), "\"თბილისი\"");
}

#[test]
fn the_queries_read_the_appliances_own_families_over_the_ranges_window() {
    let [rtt, loss] = queries(r#"a"b"#, Range::H24);
    assert_eq!(
        rtt,
        r#"avg(avg_over_time(wardops_device_rtt_seconds{device="a\"b"}[300s])) * 1000"#
    );
    assert_eq!(
        loss,
        r#"100 * (1 - sum(increase(wardops_device_replies_total{device="a\"b"}[300s])) / sum(increase(wardops_device_requests_total{device="a\"b"}[300s])))"#
    );
    // A step of 15 s still summarises at least a minute.
    assert!(queries("d", Range::H1)[0].contains("[60s]"));
}

#[test]
fn a_matrix_reads_as_points_and_nan_is_a_gap() {
    let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{},"values":[[1700000000,"1.5"],[1700000015.5,"NaN"],[1700000030,"+Inf"],[1700000045,"2"]]}]}}"#;
    let points = parse(200, body).unwrap();
    let t = |s| DateTime::from_timestamp(s, 0).unwrap();
    assert_eq!(
        points,
        vec![(t(1_700_000_000), 1.5), (t(1_700_000_045), 2.0)]
    );
    let none = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
    assert_eq!(parse(200, none).unwrap(), vec![]);
}

#[test]
fn every_kind_of_bad_answer_is_a_sentence() {
    let cases: &[(u16, &[u8], &str)] = &[
        (200, b"<html>proxy login</html>", "answered something that is not its JSON"),
        (200, b"", "answered something that is not its JSON"),
        (
            422,
            br#"{"status":"error","errorType":"bad_data","error":"cannot parse query"}"#,
            "answered HTTP 422: cannot parse query",
        ),
        (503, b"Service Unavailable", "answered HTTP 503"),
        (
            200,
            br#"{"status":"error","error":"too many points"}"#,
            "answered error: too many points",
        ),
        (
            200,
            br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            "answered a vector where a matrix was asked for",
        ),
        (
            200,
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[]},{"values":[]}]}}"#,
            "answered 2 series where one was asked for",
        ),
        (
            200,
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"fast"]]}]}}"#,
            "answered a value that is not a number: \"fast\"",
        ),
        (
            200,
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1e300,"1"]]}]}}"#,
            "answered a time out of range",
        ),
        (200, br#"{"status":"success"}"#, "answered success without data"),
    ];
    for (status, body, want) in cases {
        let err = parse(*status, body).unwrap_err();
        assert!(
            err.starts_with(want),
            "{status} {:?}: {err}",
            String::from_utf8_lossy(body)
        );
    }
    let long = format!(r#"{{"status":"error","error":"{}"}}"#, "x".repeat(5000));
    assert!(parse(400, long.as_bytes()).unwrap_err().len() < 300);
}

/// A loopback HTTP server that answers every request with `answer` after `delay`.
async fn server(answer: Vec<u8>, delay: Duration) -> String {
    counting_server(answer, delay, Default::default()).await
}

/// [`server`], counting the connections it takes in `taken`.
async fn counting_server(
    answer: Vec<u8>,
    delay: Duration,
    taken: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let _ = socket.write_all(&answer).await;
            });
        }
    });
    url
}

fn http(status: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[tokio::test]
async fn a_slow_huge_refusing_or_failing_server_ends_in_an_error_within_the_timeout() {
    let end = Utc::now();
    let timeout = Duration::from_millis(400);
    let ok = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"0.5"]]}]}}"#;
    let good =
        VictoriaMetrics::new(&server(http("200 OK", ok), Duration::ZERO).await, timeout).unwrap();
    let series = good.device("d", Range::H1, end).await.unwrap();
    assert_eq!(series.points(), 2);

    let huge = http("200 OK", &vec![b' '; MAX_ANSWER + 10]);
    let slow = http("200 OK", ok);
    let failing = http(
        "503 Service Unavailable",
        br#"{"status":"error","error":"overloaded"}"#,
    );
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    for (url, want) in [
        (
            server(huge, Duration::ZERO).await,
            "answered more than 1024 KiB",
        ),
        (server(slow, Duration::from_secs(5)).await, "timed out"),
        (
            server(failing, Duration::ZERO).await,
            "answered HTTP 503: overloaded",
        ),
        (refused, "error sending request"),
    ] {
        let vm = VictoriaMetrics::new(&url, timeout).unwrap();
        let started = Instant::now();
        let err = vm.device("d", Range::H24, end).await.unwrap_err();
        assert!(err.contains(want), "{url}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{url}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_page_read_again_within_seconds_asks_nothing_again() {
    use std::sync::atomic::Ordering::SeqCst;
    let ok = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"0.5"]]}]}}"#;
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = counting_server(http("200 OK", ok), Duration::ZERO, taken.clone()).await;
    let vm = VictoriaMetrics::new(&url, Duration::from_secs(2)).unwrap();
    let end = Utc::now();
    let first = vm.device("d", Range::H1, end).await.unwrap();
    assert_eq!(taken.load(SeqCst), 2, "RTT and loss");
    assert_eq!(vm.device("d", Range::H1, end).await.unwrap(), first);
    assert_eq!(taken.load(SeqCst), 2, "the same answer again");
    vm.device("d", Range::H24, end).await.unwrap();
    vm.device("e", Range::H1, end).await.unwrap();
    assert_eq!(taken.load(SeqCst), 6, "another range, another device");
}
