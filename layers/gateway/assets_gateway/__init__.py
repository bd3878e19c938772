"""assets-gateway core: the pipeline behind every door (identity → manifest → policy → token →
Cloudflare → envelope → audit). Pure modules (manifest, policy, globs, envelope, identity) import
no AWS or HTTP library; adapters (policy_store, token, cloudflare) translate their errors into
the domain errors of `errors`."""
