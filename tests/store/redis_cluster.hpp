// A real Redis Cluster of the test's own: three masters (and optionally a
// replica each) from redis-server processes (redis_server.hpp: free loopback
// ports, own directories, stopped by PID), slots split evenly with
// CLUSTER ADDSLOTSRANGE, joined with CLUSTER MEET, and ready once every node
// says cluster_state:ok and serves the full map. Also what the cluster tests
// do to it: run a command on the node that owns a key, move a key's slot to
// another master (SETSLOT MIGRATING/IMPORTING, MIGRATE in batches, SETSLOT
// NODE) while the caller's load goes on, and find a master's replica.
//
// Thread safety: start and stop from the main thread; `migrate_slot_of` may run
// on another thread while the stores work (it only talks to Redis).
#pragma once

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "redis_server.hpp"

namespace otsync::store::test {

class redis_cluster {
 public:
  static constexpr int master_count = 3;

  /// `node_timeout`: cluster-node-timeout (how soon a dead master's replica takes over).
  explicit redis_cluster(bool with_replicas = false, std::chrono::milliseconds node_timeout = std::chrono::seconds(2))
      : with_replicas_(with_replicas), node_timeout_(node_timeout) {}

  /// Returns "" or what went wrong.
  std::string start() {
    const int count = with_replicas_ ? 2 * master_count : master_count;
    for (int i = 0; i < count; ++i) {
      nodes_.push_back(std::make_unique<redis_server>(
          std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                   "--cluster-node-timeout", std::to_string(node_timeout_.count()),
                                   "--repl-diskless-sync-delay", "0"},
          /*cluster_bus=*/true));
      if (auto error = nodes_.back()->start(); !error.empty()) return "node " + std::to_string(i) + ": " + error;
    }
    constexpr int per_master = 16384 / master_count;
    for (int i = 0; i < master_count; ++i) {
      const int first = i * per_master;
      const int last = i + 1 == master_count ? 16383 : (i + 1) * per_master - 1;
      auto r = nodes_[static_cast<std::size_t>(i)]->command(
          {"CLUSTER", "ADDSLOTSRANGE", std::to_string(first), std::to_string(last)});
      if (!r || r->is_error()) return "ADDSLOTSRANGE failed: " + (r ? r->str : std::string("no reply"));
    }
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      auto r = nodes_[i]->command(
          {"CLUSTER", "MEET", "127.0.0.1", std::to_string(nodes_[0]->port()), std::to_string(nodes_[0]->bus_port())});
      if (!r || r->is_error()) return "CLUSTER MEET failed: " + (r ? r->str : std::string("no reply"));
    }
    if (!wait_until([&] { return every_node_knows(static_cast<int>(nodes_.size())); })) {
      return "the nodes did not meet";
    }
    if (with_replicas_) {
      for (int i = 0; i < master_count; ++i) {
        auto& replica = *nodes_[static_cast<std::size_t>(master_count + i)];
        auto r = replica.command({"CLUSTER", "REPLICATE", node_id(*nodes_[static_cast<std::size_t>(i)])});
        if (!r || r->is_error()) return "CLUSTER REPLICATE failed: " + (r ? r->str : std::string("no reply"));
      }
    }
    if (!wait_until([&] { return healthy(); })) return "the cluster did not reach cluster_state:ok";
    return "";
  }

  /// redis-cluster://... with every master as a seed.
  [[nodiscard]] std::string uri() const {
    std::string out = "redis-cluster://";
    for (int i = 0; i < master_count; ++i) {
      out += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(nodes_[static_cast<std::size_t>(i)]->port());
    }
    return out;
  }
  [[nodiscard]] std::vector<std::pair<std::string, std::uint16_t>> seeds() const {
    std::vector<std::pair<std::string, std::uint16_t>> out;
    for (int i = 0; i < master_count; ++i) out.emplace_back("127.0.0.1", nodes_[static_cast<std::size_t>(i)]->port());
    return out;
  }
  redis_server& node(std::size_t i) { return *nodes_.at(i); }
  [[nodiscard]] std::size_t size() const { return nodes_.size(); }

  /// The node that serves `key`'s slot now (a master), or null.
  redis_server* owner_of(const std::string& key) {
    const auto slot = keyslot(key);
    for (auto& n : nodes_) {
      if (!n->running()) continue;
      auto role = n->info_field("replication", "role");
      if (role != "master") continue;
      auto slots = n->command({"CLUSTER", "SLOTS"});
      if (!slots || slots->is_error()) continue;
      for (const auto& range : slots->elements) {
        if (range.elements.size() < 3 || range.elements[0].integer > slot || range.elements[1].integer < slot) continue;
        if (range.elements[2].elements.size() >= 2 && range.elements[2].elements[1].integer == n->port())
          return n.get();
      }
    }
    return nullptr;
  }

  /// A master's replica (with_replicas), or null.
  redis_server* replica_of(redis_server& master) {
    const auto id = node_id(master);
    for (auto& n : nodes_) {
      if (n.get() == &master || !n->running()) continue;
      auto r = n->command({"CLUSTER", "NODES"});
      if (!r || r->is_error()) continue;
      std::stringstream lines(r->str);
      for (std::string line; std::getline(lines, line);) {
        if (line.find("myself") != std::string::npos && line.find("slave " + id) != std::string::npos) return n.get();
      }
    }
    return nullptr;
  }

  /// Moves `key`'s slot to another master: keys in batches of `batch`, `pause` between batches (the
  /// load goes on meanwhile), then SETSLOT NODE on every master. Returns "" or what went wrong.
  std::string migrate_slot_of(const std::string& key, std::chrono::milliseconds pause, int batch = 2) {
    redis_server* source = owner_of(key);
    if (!source) return "no owner for " + key;
    redis_server* target = nullptr;
    for (int i = 0; i < master_count && !target; ++i) {
      auto* n = nodes_[static_cast<std::size_t>(i)].get();
      if (n != source && n->running() && n->info_field("replication", "role") == "master") target = n;
    }
    if (!target) return "no other master";
    const auto slot = std::to_string(keyslot(key));
    const auto source_id = node_id(*source);
    const auto target_id = node_id(*target);
    auto must = [](const std::optional<redis_reply>& r, const char* what) -> std::string {
      if (!r) return std::string(what) + ": no reply";
      if (r->is_error()) return std::string(what) + ": " + r->str;
      return "";
    };
    if (auto e = must(target->command({"CLUSTER", "SETSLOT", slot, "IMPORTING", source_id}), "IMPORTING"); !e.empty()) {
      return e;
    }
    if (auto e = must(source->command({"CLUSTER", "SETSLOT", slot, "MIGRATING", target_id}), "MIGRATING"); !e.empty()) {
      return e;
    }
    for (int round = 0; round < 10000; ++round) {
      auto keys = source->command({"CLUSTER", "GETKEYSINSLOT", slot, std::to_string(batch)});
      if (!keys || keys->is_error()) return "GETKEYSINSLOT failed";
      if (keys->elements.empty()) break;
      std::vector<std::string> migrate{"MIGRATE", "127.0.0.1", std::to_string(target->port()), "", "0", "5000", "KEYS"};
      for (const auto& k : keys->elements) migrate.push_back(k.str);
      if (auto e = must(source->command(migrate, nullptr, std::chrono::milliseconds(6000)), "MIGRATE"); !e.empty()) {
        return e;
      }
      std::this_thread::sleep_for(pause);
    }
    for (int i = 0; i < master_count; ++i) {
      auto* n = nodes_[static_cast<std::size_t>(i)].get();
      if (!n->running()) continue;
      if (auto e = must(n->command({"CLUSTER", "SETSLOT", slot, "NODE", target_id}), "SETSLOT NODE"); !e.empty()) {
        return e;
      }
    }
    return "";
  }

  [[nodiscard]] long long keyslot(const std::string& key) {
    auto r = nodes_.front()->command({"CLUSTER", "KEYSLOT", key});
    return r ? r->integer : -1;
  }

  /// Every running node says cluster_state:ok and serves all 16384 slots.
  bool healthy() {
    for (auto& n : nodes_) {
      if (!n->running()) continue;
      auto info = n->command({"CLUSTER", "INFO"});
      if (!info || info->str.find("cluster_state:ok") == std::string::npos ||
          info->str.find("cluster_slots_ok:16384") == std::string::npos) {
        return false;
      }
    }
    return true;
  }

  template <class Predicate>
  static bool wait_until(Predicate predicate, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!predicate()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }

 private:
  std::string node_id(redis_server& n) {
    auto r = n.command({"CLUSTER", "MYID"});
    return r ? r->str : std::string();
  }

  bool every_node_knows(int count) {
    for (auto& n : nodes_) {
      auto r = n->command({"CLUSTER", "NODES"});
      if (!r || r->is_error()) return false;
      int lines = 0;
      std::stringstream text(r->str);
      for (std::string line; std::getline(text, line);) {
        if (!line.empty() && line.find("handshake") == std::string::npos) ++lines;
      }
      if (lines < count) return false;
    }
    return true;
  }

  bool with_replicas_;
  std::chrono::milliseconds node_timeout_;
  std::vector<std::unique_ptr<redis_server>> nodes_;
};

}  // namespace otsync::store::test
