//! The netplugin → netmaster endpoint API (`/api/v1/plugin/endpoints/`): what a netplugin
//! asks for and what it gets back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::objects::Endpoint;

/// The body of `POST /api/v1/plugin/endpoints/`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointRequest {
    #[serde(rename = "endpointID")]
    pub endpoint_id: String,
    pub tenant: String,
    pub network: String,
    /// The endpoint group, or "".
    #[serde(default)]
    pub group: String,
    pub host: String,
    #[serde(default, rename = "containerID")]
    pub container_id: String,
    #[serde(default)]
    pub container_name: String,
    /// A specific address, when the runtime asks for one.
    #[serde(default)]
    pub preferred_ip: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// netmaster's answer: enough to plumb the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointAllocation {
    pub endpoint: Endpoint,
    /// The address with the network's prefix length (`20.1.1.2/24`).
    pub address: String,
    pub gateway: String,
    #[serde(default)]
    pub pkt_tag: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_allocation_keep_their_json_names() {
        let r: EndpointRequest = serde_json::from_str(
            r#"{"endpointID":"e1","tenant":"default","network":"n","host":"h1","containerID":"c","preferredIp":"20.1.1.9"}"#,
        )
        .unwrap();
        assert_eq!(
            (r.container_id.as_str(), r.preferred_ip.as_str()),
            ("c", "20.1.1.9")
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["endpointID"], "e1");
        assert_eq!(v["containerName"], "");
        assert!(serde_json::from_str::<EndpointRequest>(r#"{"endpointId":"e1"}"#).is_err());
        let a: EndpointAllocation = serde_json::from_value(serde_json::json!({
            "endpoint": {"endpointID": "e1", "network": "n", "tenantName": "default",
                         "networkName": "n", "homingHost": "h1"},
            "address": "20.1.1.2/24", "gateway": "20.1.1.1"
        }))
        .unwrap();
        assert_eq!((a.pkt_tag, a.endpoint.endpoint_id.as_str()), (0, "e1"));
    }
}
