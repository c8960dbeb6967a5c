//! `endpoint`: read-only through the API (netplugin creates them).

use super::*;

impl Rules for Endpoint {
    fn put(_: &World, _: Option<&Self>, _: Self, _: &mut Plan) -> Result<(), IntentError> {
        Err(IntentError::read_only(
            "endpoints are created by netplugin when containers start",
        ))
    }
    fn delete(_: &World, _: &Self, _: &mut Plan) -> Result<(), IntentError> {
        Err(IntentError::read_only(
            "endpoints go away when their containers do",
        ))
    }
    fn oper(w: &World, e: &Self) -> Result<serde_json::Value, IntentError> {
        let _ = w;
        Ok(serde_json::to_value(e).unwrap_or_default())
    }
}
