// The Redis store and op feed on a real Redis Cluster of three masters
// (tests/store/redis_cluster.hpp): the store conformance suite, documents
// spread over the shards, the URI, a busy document's slot migrated while two
// instances commit to it (nothing acknowledged lost or doubled, the feed
// follows the slot), and a master killed inside the cluster (its replica takes
// over; with --redis-min-replicas 1 no acknowledged commit is lost). Without
// redis-server the tests skip, or fail under OTSYNC_REQUIRE_ALL_TESTS.
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "otsync/pubsub/redis_op_feed.hpp"
#include "otsync/store/open_error.hpp"
#include "otsync/store/redis_store.hpp"
#include "redis_cluster.hpp"
#include "redis_store_support.hpp"
#include "store_conformance.hpp"

namespace otsync::store::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using C = ot::component;

std::string fresh_prefix() {
  static std::atomic<int> counter{0};
  return "otsync-cluster-test:" + std::to_string(::getpid()) + ":" + std::to_string(++counter) + ":";
}

redis_options options_for(const redis_cluster& cluster, std::string prefix, std::string instance = {}) {
  auto parsed = parse_redis_uri(cluster.uri());
  EXPECT_TRUE(parsed);
  redis_options options = parsed ? *parsed : redis_options{};
  options.key_prefix = std::move(prefix);
  options.instance_id = std::move(instance);
  return with_test_timeouts(std::move(options));
}

struct shared_cluster {
  redis_cluster cluster;
  std::string error;
};
shared_cluster& shared() {
  static const std::unique_ptr<shared_cluster> instance = [] {
    auto s = std::make_unique<shared_cluster>();
    s->error = s->cluster.start();
    return s;
  }();
  return *instance;
}

struct redis_cluster_traits {
  static std::string skip_reason() { return redis_tests_required ? "" : redis_missing_reason(); }
  static std::unique_ptr<store> open(const std::filesystem::path& /*dir*/) {
    auto& s = shared();
    if (!s.error.empty()) {
      ADD_FAILURE() << "redis cluster: " << s.error;
      return nullptr;
    }
    return open_connected(options_for(s.cluster, fresh_prefix()));
  }
};

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(RedisCluster, StoreConformance, ::testing::Types<redis_cluster_traits>);

namespace {

TEST(RedisClusterUri, ParsesSeeds) {
  auto one = parse_redis_uri("redis-cluster://10.0.0.1");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->cluster_seeds, (std::vector<std::pair<std::string, std::uint16_t>>{{"10.0.0.1", 6379}}));
  auto three = parse_redis_uri("redis-cluster://a:7000,b:7001,c/");
  ASSERT_TRUE(three);
  EXPECT_EQ(three->cluster_seeds,
            (std::vector<std::pair<std::string, std::uint16_t>>{{"a", 7000}, {"b", 7001}, {"c", 6379}}));
  EXPECT_TRUE(three->sentinels.empty());
  for (const char* bad : {"redis-cluster://", "redis-cluster://a:0", "redis-cluster://a:70000", "redis-cluster://a,,b",
                          "redis-cluster://a:1/2", "redis-cluster://:1", "redis-cluster://a:b:c"}) {
    EXPECT_FALSE(parse_redis_uri(bad)) << bad;
  }
  std::string many = "redis-cluster://h";
  for (int i = 0; i < 64; ++i) many += ",h";
  EXPECT_FALSE(parse_redis_uri(many)) << "65 seeds";
}

class RedisClusterStore : public ::testing::Test {
 protected:
  void SetUp() override {
    OTSYNC_REQUIRE_REDIS_SERVER();
    if (!shared().error.empty()) GTEST_FAIL() << "redis cluster: " << shared().error;
  }
  redis_cluster& cluster() { return shared().cluster; }
};

TEST_F(RedisClusterStore, DocumentsSpreadOverTheShardsAndTheListingSeesThemAll) {
  const auto prefix = fresh_prefix();
  auto s = open_connected(options_for(cluster(), prefix));
  std::set<std::string> ids;
  for (int i = 0; i < 30; ++i) {
    doc_history doc{{"spread", "doc-" + std::to_string(i)}};
    ASSERT_EQ(doc.append(*s, oplog::create_body{text_type, "x"}), std::error_code{});
    ASSERT_EQ(doc.append(*s, ot::op{C::insert("y")}), std::error_code{});
    ids.insert(doc.key.id);
  }
  std::set<std::uint16_t> owners;
  for (const auto& id : ids) {
    auto* owner = cluster().owner_of(prefix + redis_doc_tag({"spread", id}) + ":head");
    ASSERT_TRUE(owner);
    EXPECT_FALSE(owner->keys(prefix + redis_doc_tag({"spread", id}) + ":*").empty());
    owners.insert(owner->port());
  }
  EXPECT_EQ(owners.size(), 3U) << "30 documents on fewer than three masters";
  auto listed = list_documents(*s, "spread", "", 100);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 30U);
  for (const auto& row : *listed) {
    EXPECT_TRUE(ids.contains(row.id));
    EXPECT_EQ(row.version, 2U) << row.id;
  }
}

// One writer: commits `count` ops with its own src, each at the head it reads; a commit whose
// outcome is unknown is resent with the same (src, seq), and an op found in the log counts as done.
struct writer_result {
  std::set<std::uint64_t> acked;
  int unknown = 0;
  int conflicts = 0;
  int failed_loads = 0;
};
// `stop` (optional) ends it early; `acked_so_far` (optional) follows its progress.
writer_result write_ops(store& s, const doc_key& key, const std::string& src, int count,
                        clock_type::time_point deadline, const std::atomic<bool>* stop = nullptr,
                        std::atomic<int>* acked_so_far = nullptr) {
  writer_result out;
  std::uint64_t seq = 1;
  while (seq <= static_cast<std::uint64_t>(count) && clock_type::now() < deadline && !(stop && *stop)) {
    auto loaded = load(s, key);
    if (!loaded) {
      ++out.failed_loads;
      std::this_thread::sleep_for(20ms);
      continue;
    }
    bool already = false;
    for (const auto& op : loaded->ops) already = already || (op.src == src && op.seq == seq);
    if (already) {
      out.acked.insert(seq++);
      if (acked_so_far) ++*acked_so_far;
      continue;
    }
    auto head = oplog::replay(loaded->base, loaded->ops);
    if (!head) {
      ADD_FAILURE() << "the log does not replay: " << head.error().message();
      break;
    }
    oplog::op_record record{src, seq, head->version, ot::op{C::insert(src.substr(0, 1))}, 0};
    auto after = oplog::replay(*head, std::span(&record, 1));
    if (!after) break;
    const auto error = commit(s, {key, record, *after, false});
    if (!error) {
      out.acked.insert(seq++);
      if (acked_so_far) ++*acked_so_far;
    } else if (error == errc::version_conflict) {
      ++out.conflicts;
    } else {
      ++out.unknown;
      std::this_thread::sleep_for(20ms);
    }
  }
  return out;
}

/// Every acknowledged op is in the log exactly once, versions in order, nothing else there.
void expect_log_holds(store& s, const doc_key& key, const std::map<std::string, std::set<std::uint64_t>>& acked) {
  auto ops = load_ops(s, key, 0);
  ASSERT_TRUE(ops);
  std::map<std::string, std::multiset<std::uint64_t>> seen;
  for (std::size_t i = 0; i < ops->size(); ++i) {
    EXPECT_EQ((*ops)[i].version, i);
    seen[(*ops)[i].src].insert((*ops)[i].seq);
  }
  for (const auto& [src, seqs] : acked) {
    for (auto seq : seqs) EXPECT_EQ(seen[src].count(seq), 1U) << src << " seq " << seq;
  }
}

TEST_F(RedisClusterStore, ABusyDocumentsSlotMigratesWithNothingLostAndTheFeedFollows) {
  const auto prefix = fresh_prefix();
  auto first = open_connected(options_for(cluster(), prefix, "i1"));
  auto second = open_connected(options_for(cluster(), prefix, "i2"));
  // Declared before the feed, which calls into them until it is destroyed.
  std::mutex mutex;
  std::set<std::uint64_t> delivered;
  std::atomic<int> resyncs{0};
  auto feed = pubsub::open_redis_op_feed(options_for(cluster(), prefix, "i3"));
  ASSERT_TRUE(eventually([&] { return feed->connected(); }, 15s));
  const doc_key key{"busy", "migrating"};
  feed->subscribe(
      key,
      [&](oplog::op_record op) {
        std::lock_guard lock(mutex);
        delivered.insert(op.version);
      },
      [&] { ++resyncs; });
  ASSERT_TRUE(eventually([&] { return resyncs.load() > 0; }, 10s)) << "the subscription was never confirmed";
  doc_history doc{key};
  ASSERT_EQ(doc.append(*first, oplog::create_body{text_type, ""}), std::error_code{});

  const auto head_key = prefix + redis_doc_tag(key) + ":head";
  // Both writers commit until the slot has gone there and back (whatever the machine's speed).
  const auto deadline = clock_type::now() + 60s;
  std::atomic<bool> stop{false};
  std::atomic<int> acked{0};
  writer_result a;
  writer_result b;
  std::thread writer_a([&] { a = write_ops(*first, key, "a", 1'000'000, deadline, &stop, &acked); });
  std::thread writer_b([&] { b = write_ops(*second, key, "b", 1'000'000, deadline, &stop, &acked); });
  std::string migration_error;
  int acked_before_move = 0;
  std::thread mover([&] {
    eventually([&] { return acked.load() >= 50; }, 20s);
    acked_before_move = acked.load();
    // There and back: keys two at a time, so the commit script meets a half-moved document (ASK,
    // TRYAGAIN), and the feed is unsubscribed by Redis twice.
    migration_error = cluster().migrate_slot_of(head_key, 30ms);
    if (migration_error.empty()) migration_error = cluster().migrate_slot_of(head_key, 30ms);
    const int acked_after_move = acked.load();
    eventually([&] { return acked.load() >= acked_after_move + 50; }, 20s);  // and on after it
    stop = true;
  });
  mover.join();
  writer_a.join();
  writer_b.join();
  ASSERT_EQ(migration_error, "");
  EXPECT_GE(acked_before_move, 50) << "the writers never got going";
  EXPECT_GT(a.acked.size() + b.acked.size(), static_cast<std::size_t>(acked_before_move) + 50)
      << a.unknown + b.unknown << " unknown: commits stopped during or after the move";
  expect_log_holds(*first, key, {{"a", a.acked}, {"b", b.acked}});
  std::uint64_t redirects = 0;
  for (auto* s : {first.get(), second.get()}) {
    for (const auto& m : s->health().values) {
      if (m.name == "otsync_redis_redirects_total") redirects += m.value;
    }
  }
  EXPECT_GT(redirects, 0U) << "the stores never met a redirection: did the slot move?";

  // After the move the feed is subscribed on the new shard: a new commit reaches it.
  auto head = load(*second, key);
  ASSERT_TRUE(head);
  const auto version = head->version_reached();
  auto last = write_ops(*second, key, "c", 1, clock_type::now() + 10s);
  ASSERT_EQ(last.acked.size(), 1U);
  EXPECT_TRUE(eventually(
      [&] {
        std::lock_guard lock(mutex);
        return delivered.contains(version);
      },
      10s))
      << "the op committed after the migration never reached the feed (" << resyncs.load() << " resyncs)";
  EXPECT_GE(resyncs.load(), 3) << "Redis unsubscribes the feed when the slot leaves: it must resubscribe";
}

// A master restarted (no replica to take over) accepts connections at once but answers LOADING,
// then CLUSTERDOWN for Redis's 2 s writable delay: the store must not say it is connected (ready)
// before the master serves, and reads and commits right after it does go through.
TEST(RedisClusterRestart, AMasterRestartedIsNotReadyUntilItServes) {
  OTSYNC_REQUIRE_REDIS_SERVER();
  redis_cluster cluster(false, 2000ms);
  ASSERT_EQ(cluster.start(), "");
  const auto prefix = fresh_prefix();
  auto s = open_connected(options_for(cluster, prefix, "i1"));
  const doc_key key{"restart", "doc"};
  doc_history doc{key};
  ASSERT_EQ(doc.append(*s, oplog::create_body{text_type, ""}), std::error_code{});
  redis_server* master = cluster.owner_of(prefix + redis_doc_tag(key) + ":head");
  ASSERT_TRUE(master);

  master->stop();
  ASSERT_TRUE(eventually([&] { return !s->connected(); }, 10s)) << "the store did not notice its master go";
  ASSERT_EQ(master->restart(), "");
  const auto restarted = clock_type::now();
  ASSERT_TRUE(eventually([&] { return s->connected(); }, 30s)) << "the store did not reconnect by itself";
  const auto ready_after = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - restarted).count();
  // Ready means serving: the first read and commit go through.
  auto reply = master->command({"CLUSTER", "INFO"});
  ASSERT_TRUE(reply);
  EXPECT_NE(reply->str.find("cluster_state:ok"), std::string::npos) << "ready while the master says " << reply->str;
  auto loaded = load(*s, key);
  ASSERT_TRUE(loaded) << "a read right after ready failed: " << loaded.error().message();
  auto result = write_ops(*s, key, "a", 3, clock_type::now() + 10s);
  EXPECT_EQ(result.acked.size(), 3U);
  EXPECT_EQ(result.unknown + result.failed_loads, 0) << "commits right after ready failed";
  EXPECT_GE(ready_after, 1000) << "ready before Redis's writable delay was over";
  std::cout << "[          ] restart: ready " << ready_after << " ms after the master came back\n";
}

TEST(RedisClusterFailover, AMasterKilledItsReplicaTakesOverAndNoAcknowledgedCommitIsLost) {
  OTSYNC_REQUIRE_REDIS_SERVER();
  redis_cluster cluster(true, 1000ms);
  ASSERT_EQ(cluster.start(), "");
  const auto prefix = fresh_prefix();
  auto options = options_for(cluster, prefix, "i1");
  options.min_replicas = 1;
  options.wait_timeout = 500ms;
  options.command_timeout = 1500ms;
  auto s = open_connected(options);
  const doc_key key{"failover", "doc"};
  doc_history doc{key};
  ASSERT_EQ(doc.append(*s, oplog::create_body{text_type, ""}), std::error_code{});
  const auto head_key = prefix + redis_doc_tag(key) + ":head";
  redis_server* master = cluster.owner_of(head_key);
  ASSERT_TRUE(master);
  redis_server* replica = cluster.replica_of(*master);
  ASSERT_TRUE(replica);

  // One writer, committing until told to stop (joined on every way out of the test).
  writer_result result;
  std::atomic<bool> stop{false};
  std::atomic<int> acked{0};
  std::thread writer([&] { result = write_ops(*s, key, "a", 1'000'000, clock_type::now() + 90s, &stop, &acked); });
  struct joiner {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~joiner() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  } join_writer{stop, writer};

  ASSERT_TRUE(eventually([&] { return acked.load() >= 50; }, 20s)) << "the writer never got going";
  master->kill();  // SIGKILL, under load
  const auto killed = clock_type::now();
  const int acked_at_kill = acked.load();
  // The replica takes over once the other masters agree the master is gone (cluster-node-timeout).
  ASSERT_TRUE(redis_cluster::wait_until([&] {
    return replica->info_field("replication", "role") == "master" && cluster.healthy();
  })) << "no failover within 30 s";
  const auto failed_over = clock_type::now();
  // A new master without replicas can confirm nothing (WAIT 1): commits stay unknown, never
  // acknowledged, until the old master is back, as a replica of the new one.
  ASSERT_EQ(master->restart(), "");
  ASSERT_TRUE(eventually([&] { return acked.load() >= acked_at_kill + 50; }, 30s))
      << "acknowledgements did not resume after the failover";
  const auto resumed = clock_type::now();
  stop = true;
  writer.join();
  // The kill lands in a commit (unknown, resent) or in a read (failed, read again).
  EXPECT_GT(result.unknown + result.failed_loads, 0) << "nothing ever failed: was the master killed under load?";
  ASSERT_TRUE(eventually([&] { return s->connected(); }, 30s)) << "the store did not reconnect by itself";
  expect_log_holds(*s, key, {{"a", result.acked}});
  const auto ms_since_kill = [&](clock_type::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t - killed).count();
  };
  std::cout << "[          ] failover: cluster_state:ok again " << ms_since_kill(failed_over)
            << " ms after the kill, 50 more acks by " << ms_since_kill(resumed) << " ms; " << result.acked.size()
            << " acked, " << result.unknown << " answered unknown and resent, " << result.failed_loads
            << " reads failed\n";
}

}  // namespace
}  // namespace otsync::store::test
