#include "otsync/server/metrics.hpp"

#include "otsync/server/log.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace otsync::server {
namespace {

// 50 µs .. ~3 s: local submits are sub-millisecond, fsyncs a few milliseconds.
prometheus::Histogram::BucketBoundaries latency_buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
}

double seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

// A counter kept by another component (the store, the op feed) is sampled as a
// running total: the Prometheus counter is advanced to it, never moved back.
// Totals below 2^53 are exact in a double. Callers hold sampled_mutex_, so two
// scrapes at once cannot both add the same difference.
void advance_to(prometheus::Counter& counter, std::uint64_t total) {
  const auto target = static_cast<double>(total);
  const double current = counter.Value();
  if (target > current) {
    counter.Increment(target - current);
  }
}

}  // namespace

metrics::metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  connections_ =
      &prometheus::BuildGauge().Name("otsync_connections_open").Help("Open WebSocket connections").Register(r).Add({});
  connections_total_ = &prometheus::BuildCounter()
                            .Name("otsync_connections_total")
                            .Help("WebSocket connections accepted")
                            .Register(r)
                            .Add({});
  slow_consumers_ = &prometheus::BuildCounter()
                         .Name("otsync_slow_consumer_disconnects_total")
                         .Help("Connections closed because their send queue overflowed")
                         .Register(r)
                         .Add({});
  presence_received_ = &prometheus::BuildCounter()
                            .Name("otsync_presence_received_total")
                            .Help("Presence updates (p) received from clients")
                            .Register(r)
                            .Add({});
  presence_coalesced_ = &prometheus::BuildCounter()
                             .Name("otsync_presence_coalesced_total")
                             .Help("Presence updates replaced by a newer one before broadcast (--max-presence-rate)")
                             .Register(r)
                             .Add({});
  presence_unkept_ = &prometheus::BuildCounter()
                          .Name("otsync_presence_unkept_total")
                          .Help(
                              "Presences shown to a connection that already kept --max-kept-presences: sent, "
                              "not kept to be sent again after its acks")
                          .Register(r)
                          .Add({});
  presence_delivered_ = &prometheus::BuildCounter()
                             .Name("otsync_presence_delivered_total")
                             .Help("Presence frames (p, pr) sent to other members of a channel")
                             .Register(r)
                             .Add({});
  presence_channels_ = &prometheus::BuildGauge()
                            .Name("otsync_presence_channels")
                            .Help("Presence channels with at least one subscriber")
                            .Register(r)
                            .Add({});
  presence_remote_ = &prometheus::BuildGauge()
                          .Name("otsync_presence_remote")
                          .Help("Presences other instances show on channels with members here (--max-remote-presences)")
                          .Register(r)
                          .Add({});
  handshake_ids_refused_ = &prometheus::BuildCounter()
                                .Name("otsync_handshake_ids_refused_total")
                                .Help("Handshakes naming a connection id no instance minted (a new id was given)")
                                .Register(r)
                                .Add({});
  auth_failures_ = &prometheus::BuildCounter()
                        .Name("otsync_auth_failures_total")
                        .Help("WebSocket upgrades and REST requests refused for their bearer token, by reason")
                        .Register(r);
  documents_open_ =
      &prometheus::BuildGauge().Name("otsync_documents_open").Help("Documents held in memory").Register(r).Add({});
  ops_committed_ = &prometheus::BuildCounter()
                        .Name("otsync_ops_committed_total")
                        .Help("Ops committed to the store")
                        .Register(r)
                        .Add({});
  commit_batches_ = &prometheus::BuildCounter()
                         .Name("otsync_commit_batches_total")
                         .Help("Store commit batches (one store round trip each)")
                         .Register(r)
                         .Add({});
  submit_latency_ = &prometheus::BuildHistogram()
                         .Name("otsync_submit_latency_seconds")
                         .Help("From receiving an op to its ack or error")
                         .Register(r)
                         .Add({}, latency_buckets());
  commit_latency_ = &prometheus::BuildHistogram()
                         .Name("otsync_commit_latency_seconds")
                         .Help("Store commit of one batch, until durable")
                         .Register(r)
                         .Add({}, latency_buckets());
  send_queue_depth_ = &prometheus::BuildGauge()
                           .Name("otsync_send_queue_depth")
                           .Help("Frames queued on connections with a write in progress (being written or behind it)")
                           .Register(r)
                           .Add({});
  ws_writes_ = &prometheus::BuildCounter()
                    .Name("otsync_ws_writes_total")
                    .Help("WebSocket writes (one syscall each, unless the socket is full)")
                    .Register(r)
                    .Add({});
  ws_frames_written_ = &prometheus::BuildCounter()
                            .Name("otsync_ws_frames_written_total")
                            .Help("WebSocket frames written; divided by otsync_ws_writes_total: frames per write")
                            .Register(r)
                            .Add({});
  ws_writes_held_ = &prometheus::BuildCounter()
                         .Name("otsync_ws_writes_held_total")
                         .Help("Writes whose broadcasts were held back to leave together (--broadcast-coalesce-us)")
                         .Register(r)
                         .Add({});
  broadcast_hold_ = &prometheus::BuildGauge()
                         .Name("otsync_broadcast_hold_seconds")
                         .Help("How long streaming connections hold broadcasts to write them together (by load)")
                         .Register(r)
                         .Add({});
  store_transactions_ = &prometheus::BuildCounter()
                             .Name("otsync_store_transactions_total")
                             .Help("SQLite write transactions since start (one fsync each; commits are grouped)")
                             .Register(r)
                             .Add({});
  store_commits_ = &prometheus::BuildCounter()
                        .Name("otsync_store_commits_total")
                        .Help("Ops written by the SQLite store since start")
                        .Register(r)
                        .Add({});
  store_failed_batches_ = &prometheus::BuildCounter()
                               .Name("otsync_store_failed_batches_total")
                               .Help("SQLite write transactions that failed and were rolled back")
                               .Register(r)
                               .Add({});
  errors_ = &prometheus::BuildCounter()
                 .Name("otsync_errors_total")
                 .Help("Error replies sent to clients, by ShareDB error code")
                 .Register(r);
  // A labelled family with no series is not rendered at all: start the codes
  // clients commonly get at zero, so the metric exists (and rates work) before
  // the first error. Other codes appear when first counted.
  for (const char* code :
       {"ERR_MESSAGE_BADLY_FORMED", "ERR_OT_OP_BADLY_FORMED", "ERR_OT_OP_NOT_APPLIED", "ERR_DOC_ALREADY_CREATED",
        "ERR_DOC_DOES_NOT_EXIST", "ERR_DOC_TYPE_NOT_RECOGNIZED", "ERR_DOC_WAS_DELETED",
        "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT", "ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND",
        "ERR_MAX_SUBMIT_RETRIES_EXCEEDED", "ERR_DATABASE_UNAVAILABLE", "ERR_SERVER_BUSY", "FRAME_TOO_LARGE",
        "ERR_OP_TOO_LARGE", "ERR_BULK_LIMIT_EXCEEDED", "ERR_SUBSCRIPTION_LIMIT_EXCEEDED", "ERR_RATE_LIMITED",
        "ERR_CREATE_RATE_LIMITED", "ERR_MEMORY_BUDGET_EXCEEDED"}) {
    errors_->Add({{"code", code}});
  }
  auto& lost_ops = prometheus::BuildCounter()
                       .Name("otsync_store_lost_ops_total")
                       .Help(
                           "Committed ops a shared store no longer held when read again (a Redis failover "
                           "without --redis-min-replicas): put_back (this instance still had them and "
                           "committed them again) or gone (clients that saw them stay ahead until they edit "
                           "or reload)")
                       .Register(r);
  lost_ops_put_back_ = &lost_ops.Add({{"outcome", "put_back"}});
  lost_ops_gone_ = &lost_ops.Add({{"outcome", "gone"}});
  auto& reads_held = prometheus::BuildCounter()
                         .Name("otsync_reads_held_total")
                         .Help(
                             "Fetches and subscriptions that waited for a store that did not answer "
                             "(--max-store-wait-ms): served once it did, or failed (the wait ran out, or the "
                             "connection unsubscribed)")
                         .Register(r);
  reads_held_served_ = &reads_held.Add({{"outcome", "served"}});
  reads_held_failed_ = &reads_held.Add({{"outcome", "failed"}});
  limit_hits_ = &prometheus::BuildCounter()
                     .Name("otsync_limit_hits_total")
                     .Help(
                         "Connections refused or closed by a limit (connections, connections_per_address, "
                         "message_timeout, partial_bytes)")
                     .Register(r);
  for (const char* limit : {"connections", "connections_per_address", "message_timeout", "partial_bytes"}) {
    limit_hits_->Add({{"limit", limit}});
  }
  resident_bytes_ = &prometheus::BuildGauge()
                         .Name("otsync_documents_resident_bytes")
                         .Help("Text and cached ops of the open documents (--max-open-document-bytes)")
                         .Register(r)
                         .Add({});
  partial_bytes_ = &prometheus::BuildGauge()
                        .Name("otsync_partial_message_bytes")
                        .Help("Bytes held for partly received WebSocket messages, over all connections")
                        .Register(r)
                        .Add({});
}

metrics::~metrics() = default;

void metrics::on_committed(std::size_t ops, std::chrono::nanoseconds store_latency) {
  ops_committed_->Increment(static_cast<double>(ops));
  commit_batches_->Increment();
  commit_latency_->Observe(seconds(store_latency));
}

void metrics::on_submit_done(std::chrono::nanoseconds latency, const protocol::error_info*) {
  submit_latency_->Observe(seconds(latency));
}

void metrics::on_store_lost_ops(const std::string& collection, const std::string& id, std::uint64_t from_version,
                                std::size_t ops, bool put_back) {
  (put_back ? lost_ops_put_back_ : lost_ops_gone_)->Increment(static_cast<double>(ops));
  log::warn(put_back ? "store_lost_ops_put_back" : "store_lost_ops_gone",
            {{"collection", collection},
             {"id", id},
             {"from_version", std::to_string(from_version)},
             {"ops", std::to_string(ops)}});
}

void metrics::on_read_held(bool served) {
  (served ? reads_held_served_ : reads_held_failed_)->Increment();
}

void metrics::on_error_reply(std::string_view code) {
  errors_->Add({{"code", std::string(code)}}).Increment();
}

void metrics::enable_tls() {
  auto& r = *registry_;
  tls_reloads_ = &prometheus::BuildCounter()
                      .Name("otsync_tls_reloads_total")
                      .Help("Certificate reloads on SIGHUP, by result (ok, failed: the previous certificate stays)")
                      .Register(r);
  tls_reloads_->Add({{"result", "ok"}});
  tls_reloads_->Add({{"result", "failed"}});
  tls_handshake_failures_ = &prometheus::BuildCounter()
                                 .Name("otsync_tls_handshake_failures_total")
                                 .Help("TLS handshakes that failed or timed out (plain HTTP, unknown CA, ...)")
                                 .Register(r)
                                 .Add({});
  tls_not_after_ = &prometheus::BuildGauge()
                        .Name("otsync_tls_certificate_not_after_seconds")
                        .Help("When the serving certificate expires (Unix time)")
                        .Register(r)
                        .Add({});
}

void metrics::tls_reloaded(bool ok) {
  if (tls_reloads_) tls_reloads_->Add({{"result", ok ? "ok" : "failed"}}).Increment();
}

void metrics::tls_handshake_failed() {
  if (tls_handshake_failures_) tls_handshake_failures_->Increment();
}

void metrics::set_tls_not_after(double unix_seconds) {
  if (tls_not_after_) tls_not_after_->Set(unix_seconds);
}

void metrics::auth_failed(std::string_view reason) {
  auth_failures_->Add({{"reason", std::string(reason)}}).Increment();
}

void metrics::on_handshake_id_refused() {
  handshake_ids_refused_->Increment();
}

void metrics::on_presence_received() {
  presence_received_->Increment();
}

void metrics::on_presence_unkept() {
  presence_unkept_->Increment();
}

void metrics::on_presence_coalesced() {
  presence_coalesced_->Increment();
}

void metrics::on_presence_delivered(std::size_t frames) {
  presence_delivered_->Increment(static_cast<double>(frames));
}

void metrics::on_presence_remote(std::size_t presences) {
  presence_remote_->Set(static_cast<double>(presences));
}

void metrics::on_presence_channels(std::size_t channels) {
  presence_channels_->Set(static_cast<double>(channels));
}

void metrics::connection_opened() {
  connections_->Increment();
  connections_total_->Increment();
}
void metrics::connection_closed() {
  connections_->Decrement();
}
void metrics::connection_dropped_slow() {
  slow_consumers_->Increment();
}
void metrics::limit_hit(std::string_view limit) {
  limit_hits_->Add({{"limit", std::string(limit)}}).Increment();
}
void metrics::set_partial_bytes(std::size_t bytes) {
  partial_bytes_->Set(static_cast<double>(bytes));
}
void metrics::set_resident_document_bytes(std::uint64_t bytes) {
  resident_bytes_->Set(static_cast<double>(bytes));
}
void metrics::send_queue_changed(long delta) {
  send_queue_depth_->Increment(static_cast<double>(delta));
}
void metrics::frames_written(std::size_t frames) {
  ws_writes_->Increment();
  ws_frames_written_->Increment(static_cast<double>(frames));
}
void metrics::write_held() {
  ws_writes_held_->Increment();
}
void metrics::set_broadcast_hold(double seconds) {
  broadcast_hold_->Set(seconds);
}

void metrics::set_store_counters(std::uint64_t transactions, std::uint64_t commits, std::uint64_t failed_batches) {
  const std::lock_guard lock(sampled_mutex_);
  advance_to(*store_transactions_, transactions);
  advance_to(*store_commits_, commits);
  advance_to(*store_failed_batches_, failed_batches);
}

void metrics::set_backend_health(const store::backend_health& store, const store::backend_health* feed,
                                 const store::backend_health* presence_bus) {
  // The SQLite store's totals have families of their own, registered at start (with or without SQLite).
  std::map<std::string_view, std::uint64_t> store_totals{{"otsync_store_transactions_total", 0},
                                                         {"otsync_store_commits_total", 0},
                                                         {"otsync_store_failed_batches_total", 0}};
  bool sqlite_totals = false;
  {
    const std::lock_guard lock(sampled_mutex_);
    for (const auto* health : {&store, feed, presence_bus}) {
      if (!health) continue;
      for (const auto& value : health->values) {
        if (auto total = store_totals.find(value.name); total != store_totals.end()) {
          total->second = value.value;
          sqlite_totals = true;
        } else if (value.kind == store::health_kind::total) {
          auto found = backend_totals_.find(value.name);
          if (found == backend_totals_.end()) {
            auto* counter = &prometheus::BuildCounter()
                                 .Name(std::string(value.name))
                                 .Help(std::string(value.help))
                                 .Register(*registry_)
                                 .Add({});
            found = backend_totals_.emplace(std::string(value.name), counter).first;
          }
          advance_to(*found->second, value.value);
        } else {
          auto found = backend_gauges_.find(value.name);
          if (found == backend_gauges_.end()) {
            auto* gauge = &prometheus::BuildGauge()
                               .Name(std::string(value.name))
                               .Help(std::string(value.help))
                               .Register(*registry_)
                               .Add({});
            found = backend_gauges_.emplace(std::string(value.name), gauge).first;
          }
          found->second->Set(static_cast<double>(value.value));
        }
      }
    }
  }
  if (sqlite_totals) {
    set_store_counters(store_totals["otsync_store_transactions_total"], store_totals["otsync_store_commits_total"],
                       store_totals["otsync_store_failed_batches_total"]);
  }
}

std::string metrics::render(std::size_t documents_open) {
  documents_open_->Set(static_cast<double>(documents_open));
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace otsync::server
