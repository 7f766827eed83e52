//! An empty function URL Lambda: `lambda_http` with a handler that answers
//! 200 at once, for comparison with ingest and actions. See benches/README.md.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Ok::<_, std::convert::Infallible>(Response::new(Body::from("{}")))
    }))
    .await
}
