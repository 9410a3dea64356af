//! The one mapping of errors to statuses, bodies and outcomes, case by case.

use super::*;

#[test]
fn every_kind_maps_to_its_status() {
    let table = [
        (ErrorKind::ApprovalPending, 408),
        (ErrorKind::BadRequest, 400),
        (ErrorKind::RequestTimeout, 408),
        (ErrorKind::ProxyAuthRequired, 407),
        (ErrorKind::Unauthorized, 401),
        (ErrorKind::NotFound, 404),
        (ErrorKind::Forbidden, 403),
        (ErrorKind::BudgetExceeded, 429),
        (ErrorKind::RateLimited, 429),
        (ErrorKind::Misdirected, 421),
        (ErrorKind::HeadersTooLarge, 431),
        (ErrorKind::PayloadTooLarge, 413),
        (ErrorKind::BadGateway, 502),
        (ErrorKind::GatewayTimeout, 504),
        (ErrorKind::Unavailable, 503),
        (ErrorKind::Internal, 500),
    ];
    for (kind, status) in table {
        assert_eq!(kind.status().as_u16(), status, "{kind:?}");
    }
}

#[test]
fn every_refusal_says_why_in_proxy_status_naming_where_the_trail_holds_it() {
    let decided = ProxyError::new(ErrorKind::Forbidden, Side::Agent, "denied by rule no-x")
        .with_decision(DecisionRef {
            id: "d1".into(),
            rules: vec!["no-x".into()],
        })
        .recorded_as(Recorded::Request("ignored".into()));
    assert_eq!(
        decided.to_response().headers()["proxy-status"],
        "gatehouse; error=http_request_denied; details=\"denied by rule no-x (decision d1)\""
    );
    let upstream = ProxyError::new(ErrorKind::BadGateway, Side::Upstream, "refused")
        .with_failure(Failure::ConnectionRefused)
        .recorded_as(Recorded::Request("r1".into()));
    assert_eq!(
        upstream.to_response().headers()["proxy-status"],
        "gatehouse; error=connection_refused; details=\"refused (request r1)\""
    );
    let own = ProxyError::bad_request("no Host").recorded_as(Recorded::Decision("r2-r".into()));
    let response = own.to_response_shaped(&Shape::OpenAi);
    assert_eq!(
        response.headers()["proxy-status"],
        "gatehouse; error=http_request_error; details=\"no Host (decision r2-r)\""
    );
}

#[test]
fn auth_errors_carry_the_basic_challenge() {
    let err = ProxyError::new(ErrorKind::ProxyAuthRequired, Side::Agent, "no credentials");
    let response = err.to_response();
    assert_eq!(response.status(), 407);
    assert_eq!(
        response.headers()[header::PROXY_AUTHENTICATE],
        "Basic realm=\"gatehouse\""
    );
    assert_eq!(
        response.headers()["x-gatehouse-error"],
        "proxy_auth_required"
    );
}
