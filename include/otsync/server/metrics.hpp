// The server's Prometheus metrics (served at /metrics as text format 0.0.4):
// connections, open documents, committed ops, submit and commit latency,
// error replies by code, and the total depth of the send queues.
//
// Thread safety: every member function may be called from any thread
// (prometheus-cpp metrics are atomic; families lock internally).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "otsync/doc/types.hpp"
#include "otsync/server/agent.hpp"
#include "otsync/server/presence_hub.hpp"
#include "otsync/store/store.hpp"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace otsync::server {

class metrics final : public doc::document_observer, public agent_observer, public presence_observer {
 public:
  metrics();
  ~metrics() override;
  metrics(const metrics&) = delete;
  metrics& operator=(const metrics&) = delete;

  void on_committed(std::size_t ops, std::chrono::nanoseconds store_latency) override;
  void on_submit_done(std::chrono::nanoseconds latency, const protocol::error_info* error) override;
  void on_store_lost_ops(const std::string& collection, const std::string& id, std::uint64_t from_version,
                         std::size_t ops, bool put_back) override;
  void on_read_held(bool served) override;
  void on_error_reply(std::string_view code) override;
  void on_handshake_id_refused() override;
  void on_presence_received() override;
  void on_presence_coalesced() override;
  void on_presence_unkept() override;
  void on_presence_delivered(std::size_t frames) override;
  void on_presence_channels(std::size_t channels) override;
  void on_presence_remote(std::size_t presences) override;

  void connection_opened();
  void connection_closed();
  void connection_dropped_slow();
  void send_queue_changed(long delta);
  /// One WebSocket write began with `frames` frames.
  void frames_written(std::size_t frames);
  /// A write whose broadcasts were held back to leave together (--broadcast-coalesce-us) began.
  void write_held();
  /// The broadcast hold now in force (--broadcast-coalesce-us, scaled by the load).
  void set_broadcast_hold(double seconds);
  /// A connection refused or closed by a limit: `connections`, `connections_per_address`,
  /// `message_timeout`, `partial_bytes` (refusals of single requests are counted by error code).
  void limit_hit(std::string_view limit);
  /// A request or upgrade refused for its bearer token (`reason`: missing, malformed, expired, ...).
  void auth_failed(std::string_view reason);
  void set_partial_bytes(std::size_t bytes);
  /// With --tls-cert: registers the TLS metrics (an instance without TLS shows none).
  void enable_tls();
  void tls_reloaded(bool ok);
  void tls_handshake_failed();
  /// The serving certificate's notAfter, as Unix seconds.
  void set_tls_not_after(double unix_seconds);
  void set_resident_document_bytes(std::uint64_t bytes);

  /// The SQLite store's counters, sampled when /metrics is served.
  void set_store_counters(std::uint64_t transactions, std::uint64_t commits, std::uint64_t failed_batches);
  /// The values the store and the op feed (null without one) report, each
  /// under its own name, registered when first seen (so an instance without
  /// Redis shows none of Redis's).
  void set_backend_health(const store::backend_health& store, const store::backend_health* feed,
                          const store::backend_health* presence_bus = nullptr);

  /// The text exposition; `documents_open` is sampled at the call.
  std::string render(std::size_t documents_open);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* connections_;
  prometheus::Counter* connections_total_;
  prometheus::Counter* slow_consumers_;
  prometheus::Counter* handshake_ids_refused_;
  prometheus::Family<prometheus::Counter>* auth_failures_;
  prometheus::Gauge* documents_open_;
  prometheus::Counter* ops_committed_;
  prometheus::Counter* commit_batches_;
  prometheus::Histogram* submit_latency_;
  prometheus::Histogram* commit_latency_;
  prometheus::Gauge* send_queue_depth_;
  prometheus::Counter* ws_writes_;
  prometheus::Counter* ws_frames_written_;
  prometheus::Counter* ws_writes_held_;
  prometheus::Gauge* broadcast_hold_;
  // Running totals kept by the store and the op feed, sampled at each scrape
  // (under sampled_mutex_) into counters.
  std::mutex sampled_mutex_;
  prometheus::Counter* store_transactions_;
  prometheus::Counter* store_commits_;
  prometheus::Counter* store_failed_batches_;
  prometheus::Family<prometheus::Counter>* errors_;
  prometheus::Counter* lost_ops_put_back_;
  prometheus::Counter* lost_ops_gone_;
  prometheus::Counter* reads_held_served_;
  prometheus::Counter* reads_held_failed_;
  prometheus::Family<prometheus::Counter>* limit_hits_;
  prometheus::Gauge* partial_bytes_;
  prometheus::Counter* presence_received_;
  prometheus::Counter* presence_coalesced_;
  prometheus::Counter* presence_unkept_;
  prometheus::Counter* presence_delivered_;
  prometheus::Gauge* presence_channels_;
  prometheus::Gauge* presence_remote_;
  prometheus::Family<prometheus::Counter>* tls_reloads_ = nullptr;
  prometheus::Counter* tls_handshake_failures_ = nullptr;
  prometheus::Gauge* tls_not_after_ = nullptr;
  prometheus::Gauge* resident_bytes_;
  // The backends' values by name, registered when first reported (under sampled_mutex_).
  std::map<std::string, prometheus::Gauge*, std::less<>> backend_gauges_;
  std::map<std::string, prometheus::Counter*, std::less<>> backend_totals_;
};

}  // namespace otsync::server
