//! OTLP/gRPC relay: tonic services for the three signals (gzip accepted, decoded size limited
//! to `relay.max_request_bytes` by tonic itself, which answers an over-limit message with
//! RESOURCE_EXHAUSTED / OUT_OF_RANGE before our code runs, so those are not counted here).
//! With `relay.token_file`, an interceptor answers UNAUTHENTICATED before the message is read.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::{RETRY_AFTER, Refusal, RelayState};
use crate::export::batch::Payload;
use crate::export::retry::rpc;
use crate::listen::Incoming;
use crate::telemetry::RelayProtocol;

/// The gRPC services; cheap to clone.
#[derive(Debug, Clone)]
pub struct GrpcRelay {
    state: Arc<RelayState>,
}

fn refusal_status(r: Refusal) -> Status {
    match r {
        Refusal::QueueFull => {
            let code = tonic::Code::Unavailable;
            let msg = "redline-agent cannot spool this request now; retry later";
            let details = rpc::status_with_retry_info(code as i32, msg, RETRY_AFTER);
            Status::with_details(code, msg, details.into())
        }
        Refusal::ShuttingDown => Status::unavailable("redline-agent is shutting down"),
    }
}

impl GrpcRelay {
    async fn accept(&self, payload: Payload) -> Result<(), Status> {
        self.state
            .accept(payload, RelayProtocol::Grpc)
            .await
            .map_err(refusal_status)
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcRelay {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.accept(Payload::Metrics(request.into_inner())).await?;
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for GrpcRelay {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.accept(Payload::Traces(request.into_inner())).await?;
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for GrpcRelay {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.accept(Payload::Logs(request.into_inner())).await?;
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

/// Serves the three OTLP services on `incoming` (plain or TLS) until `shutdown` resolves, then
/// waits for in-flight calls.
pub async fn serve(
    incoming: Incoming,
    state: Arc<RelayState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let limit = state.max_request_bytes;
    // The token is checked before the message is read and decoded (an interceptor runs on
    // the headers), so unauthenticated clients cost no decoding.
    let gate = state.grpc_gate.clone();
    let check = move |req: Request<()>| -> Result<Request<()>, Status> {
        let auth = req.metadata().get("authorization").map(|v| v.as_bytes());
        if gate.admits(auth) {
            Ok(req)
        } else {
            Err(Status::unauthenticated("missing or wrong bearer token"))
        }
    };
    let relay = GrpcRelay { state };
    let gz = CompressionEncoding::Gzip;
    let router = tonic::transport::Server::builder()
        .add_service(InterceptedService::new(
            MetricsServiceServer::new(relay.clone())
                .accept_compressed(gz)
                .send_compressed(gz)
                .max_decoding_message_size(limit),
            check.clone(),
        ))
        .add_service(InterceptedService::new(
            TraceServiceServer::new(relay.clone())
                .accept_compressed(gz)
                .send_compressed(gz)
                .max_decoding_message_size(limit),
            check.clone(),
        ))
        .add_service(InterceptedService::new(
            LogsServiceServer::new(relay)
                .accept_compressed(gz)
                .send_compressed(gz)
                .max_decoding_message_size(limit),
            check,
        ));
    match incoming {
        Incoming::Plain(l) => {
            router
                .serve_with_incoming_shutdown(TcpListenerStream::new(l), shutdown)
                .await
        }
        Incoming::Tls(l) => {
            router
                .serve_with_incoming_shutdown(l.into_stream(), shutdown)
                .await
        }
    }
}
