//! What the proxy knows of a request or a tunnel, as the policy facts rules read: who is calling,
//! the request line, and where the checked destination is.

use std::net::SocketAddr;

use crate::geo::Geo;
use crate::policy::{AgentFacts, DestinationFacts, Facts, RequestFacts, Trigger};
use crate::proxy::ClientInfo;
use crate::proxy::guard::non_global_category;

/// The facts of `request` by the agent of `client`, for `trigger`.
pub fn facts(trigger: Trigger, client: &ClientInfo, request: RequestFacts) -> Facts {
    let identity = &client.identity;
    let agent = AgentFacts {
        id: identity.agent.clone(),
        team: identity.team.clone(),
        env: identity.env.clone(),
        execution: identity.execution.clone(),
        labels: identity.labels.clone(),
    };
    Facts::new(trigger, agent, request)
}

/// 6. locate: where the checked addresses the proxy may connect to are, and whether one of them
///    is in a private range (allowed by config).
pub fn destination_facts(addresses: &[SocketAddr], geo: &Geo) -> DestinationFacts {
    let ips: Vec<std::net::IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
    DestinationFacts::new(
        ips.first().map(ToString::to_string).unwrap_or_default(),
        ips.iter().any(|ip| non_global_category(*ip).is_some()),
        geo.locate_all(&ips),
    )
}
