"""What the gateway and its team client share: pure helpers with no dependency beyond the
standard library. One source, shipped twice: in the Lambda layer (layers/gateway) and in the
client's distribution (client/src/assets_gateway_common is a link to this folder)."""
