//! `local-pipeline up` (`make local-up`): the pipeline kept running for your
//! own webhooks, with the function URL, the API key and a `curl` command to
//! start from, and activity printed as it happens until Ctrl-C.

use local_pipeline::pipeline::Services;
use shared::testing::OortBody;

use crate::print::{PrintGate, Printer, print_banner};
use crate::{Cli, Finish, base_options, start, stop, stop_signal};

pub async fn run(cli: &Cli, port: Option<u16>) -> anyhow::Result<Finish> {
    let mut options = base_options(cli, Services::FromEnvironment)?;
    options.function_url_addr = ([127, 0, 0, 1], port.unwrap_or(9000)).into();
    let pipeline = match start(options.clone()).await {
        Err(e) if port.is_none() && format!("{e:#}").contains("binding the function URL") => {
            println!("port 9000 is taken; using a free port instead");
            options.function_url_addr = ([127, 0, 0, 1], 0).into();
            start(options).await?
        }
        other => other?,
    };
    let Some(pipeline) = pipeline else {
        return Ok(Finish::Interrupted);
    };
    print_banner(&pipeline);
    let url = pipeline.function_url();
    let body = OortBody::failed_check(
        "my-first-event",
        &["ana.lima@example.com", "ghost@example.com"],
    )
    .into_json();
    println!(
        "\nAPI key ({}): {}",
        pipeline.api_key_header(),
        pipeline.api_key()
    );
    if pipeline.okta().is_some() {
        println!(
            "demo Okta users: ana.lima, li.wei, omar.haddad (suspended), root.admin (admin), jsmith@corp (email john.smith@), \
             ops1/ops2 (shared-ops@), former.employee (deprovisioned) @example.com, svc.backup; ghost@example.com does not exist"
        );
    }
    println!("\nsend a webhook:\n");
    println!(
        "curl -sS -X POST '{url}' -H 'content-type: application/json' -H '{}: {}' --data '{}'\n",
        pipeline.api_key_header(),
        pipeline.api_key(),
        body
    );
    println!("(a repeated event id is de-duplicated: change \"id\" to send another)");
    println!("running; press Ctrl-C to stop\n");
    let printer = Printer::start(&pipeline, true, PrintGate::default());
    stop_signal().await;
    printer.stop();
    stop(pipeline).await;
    Ok(Finish::Done)
}
