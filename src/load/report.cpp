#include "report.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

namespace otsync::load {
namespace {

using ordered = nlohmann::ordered_json;

double round3(double x) {
  return std::round(x * 1000.0) / 1000.0;
}

ordered latency(const histogram& h) {
  ordered out;
  out["count"] = h.count();
  out["p50"] = round3(h.quantile(0.50) / 1000.0);
  out["p95"] = round3(h.quantile(0.95) / 1000.0);
  out["p99"] = round3(h.quantile(0.99) / 1000.0);
  out["max"] = round3(static_cast<double>(h.max()) / 1000.0);
  return out;
}

}  // namespace

std::string report_json(const options& opts, const run_result& r) {
  ordered j;
  j["preset"] = opts.preset;
  ordered params;
  params["docs"] = opts.docs;
  params["writers"] = opts.writers;
  params["readers"] = opts.readers;
  params["connections"] = opts.connections;
  params["rate"] = opts.rate;
  params["rate_jitter"] = opts.rate_jitter;
  params["duration_s"] = opts.duration_s;
  params["warmup_s"] = opts.warmup_s;
  params["threads"] = opts.threads;
  params["collection"] = opts.collection;
  params["seed"] = opts.seed;
  j["parameters"] = params;
  j["urls"] = opts.urls;
  j["run_id"] = r.run_id;
  j["total_connections"] = r.connections;
  j["window_s"] = round3(r.window_s);
  j["acked_ops"] = r.window_acks;
  j["acked_ops_per_s"] = round3(r.window_s > 0 ? static_cast<double>(r.window_acks) / r.window_s : 0);
  j["ack_latency_ms"] = latency(r.ack_latency);
  j["delivery_latency_ms"] = latency(r.delivery_latency);
  j["deliveries"] = r.window_deliveries;
  j["deliveries_per_s"] = round3(r.window_s > 0 ? static_cast<double>(r.window_deliveries) / r.window_s : 0);
  j["total_acked_ops"] = r.total_acks;
  ordered errors = ordered::object();
  for (const auto& [code, n] : r.errors) errors[code] = n;
  j["errors"] = errors;
  j["disconnects"] = r.disconnects;
  j["converged"] = r.converged;
  if (!r.converged) j["mismatch"] = r.mismatch;
  ordered servers = ordered::object();
  for (const auto& s : r.servers) {
    ordered one;
    one["cpu_percent"] = s.cpu_percent ? ordered(round3(*s.cpu_percent)) : ordered(nullptr);
    one["kernel_cpu_percent"] = s.kernel_cpu_percent ? ordered(round3(*s.kernel_cpu_percent)) : ordered(nullptr);
    one["rss_bytes"] = s.rss_bytes ? ordered(*s.rss_bytes) : ordered(nullptr);
    if (s.rss_before) one["rss_before_bytes"] = *s.rss_before;
    if (s.rss_connected) one["rss_connected_bytes"] = *s.rss_connected;
    servers[std::to_string(s.pid)] = one;
  }
  j["server"] = servers;
  if (r.rss_per_connection) j["rss_per_connection_bytes"] = std::round(*r.rss_per_connection);
  ordered loadgen;
  loadgen["cpu_percent"] = round3(r.loadgen_cpu_percent);
  loadgen["saturated"] = r.loadgen_saturated;
  j["loadgen"] = loadgen;
  j["loadgen_saturated"] = r.loadgen_saturated;
  return j.dump(2);
}

}  // namespace otsync::load
