//! Tests of the fake Okta and fake Slack themselves: the other tests trust them
//! to answer like the real services, so their answers are pinned here, over
//! real HTTP. One test binary (one link on a 2-core machine), one module per
//! part of the fakes.

mod oauth_api;
mod oauth_support;
mod oauth_token;
mod okta;
mod okta_groups;
mod okta_limits;
mod seed;
mod slack;
mod slack_clicks;
mod support;
