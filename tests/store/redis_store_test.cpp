// The Redis store against a real redis-server (tests/store/redis_server.hpp):
// the conformance suite on one server shared by this binary (a fresh key
// prefix per test), then what only Redis has: URI parsing, the key layout
// (one hash tag per document), (src, seq) dedupe across instances, one
// script call per commit, and outages (Redis stopped, killed, hung,
// restarted, down at start). Without redis-server the tests skip, or fail
// under OTSYNC_REQUIRE_ALL_TESTS.
#include "otsync/store/redis_store.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <future>
#include <iterator>
#include <map>
#include <set>
#include <tuple>

#include "otsync/store/open_error.hpp"
#include "redis_server.hpp"
#include "redis_store_support.hpp"
#include "store_conformance.hpp"

namespace otsync::store::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

// ---------------------------------------------------------------------------
// Shared server, options, prefixes

struct shared_server {
  redis_server server;
  std::string error;  ///< why it did not start ("" when it runs)
};

/// The binary's redis-server, started on first use (from the main thread)
/// and stopped at exit.
shared_server& shared_redis() {
  static const std::unique_ptr<shared_server> shared = [] {
    auto s = std::make_unique<shared_server>();
    s->error = s->server.start();
    return s;
  }();
  return *shared;
}

/// A key prefix no other test (or run) uses.
std::string fresh_prefix() {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "outside-tests";
  for (char& c : name) {
    if (c == '{' || c == '}' || c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') c = '_';
  }
  return "otsync-test:" + std::to_string(::getpid()) + ":" + std::to_string(++counter) + ":" + name + ":";
}

/// KEYS pattern matching exactly the keys that start with `prefix`.
std::string glob_for_prefix(const std::string& prefix) {
  std::string out;
  for (char c : prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out + "*";
}

redis_options options_for(std::uint16_t port, std::string prefix) {
  redis_options options;
  options.host = "127.0.0.1";
  options.port = port;
  options.key_prefix = std::move(prefix);
  return with_test_timeouts(std::move(options));
}

/// Short timeouts for the outage tests.
redis_options outage_options(std::uint16_t port, std::string prefix) {
  redis_options options = options_for(port, std::move(prefix));
  options.command_timeout = 500ms;
  options.connect_timeout = 300ms;
  options.reconnect_max = 100ms;
  return options;
}

/// Slack for scheduling on a loaded machine (sanitizers, 2 cores).
constexpr ms slack = 1500ms;

struct redis_traits {
  static std::string skip_reason() { return redis_tests_required ? "" : redis_missing_reason(); }
  static std::unique_ptr<store> open(const std::filesystem::path& /*dir*/) {
    shared_server& shared = shared_redis();
    if (!shared.error.empty()) {
      ADD_FAILURE() << "redis-server: " << shared.error;
      return nullptr;
    }
    return open_connected(options_for(shared.server.port(), fresh_prefix()));
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Redis, StoreConformance, ::testing::Types<redis_traits>);

// ---------------------------------------------------------------------------
// Calls with a bound: a handler that never comes is a failure, not a hang.

template <class R>
struct timed {
  std::optional<R> value;  ///< nullopt: no handler within the bound
  ms elapsed{0};
};

template <class R, class Start>
timed<R> call_within(ms bound, Start start) {
  auto promise = std::make_shared<std::promise<R>>();  // outlives a late handler
  auto future = promise->get_future();
  const auto begin = clock_type::now();
  start([promise](R r) { promise->set_value(std::move(r)); });
  timed<R> out;
  if (future.wait_for(bound) == std::future_status::ready) out.value = future.get();
  out.elapsed = std::chrono::duration_cast<ms>(clock_type::now() - begin);
  return out;
}

/// Every kind of call fails with `unavailable`, each within `bound`.
void expect_every_call_unavailable_within(store& s, const doc_key& key, const commit_request& request, ms bound) {
  auto check_error = [&](const char* what, const auto& t, std::error_code error) {
    SCOPED_TRACE(what);
    ASSERT_TRUE(t.value) << "no answer within " << bound.count() << " ms";
    EXPECT_EQ(error, errc::unavailable) << error.message();
    EXPECT_LE(t.elapsed, bound);
  };
  auto l = call_within<ot::result<loaded_document>>(bound, [&](auto h) { s.load(key, std::nullopt, h); });
  check_error("load", l, l.value ? l.value->error() : std::error_code{});
  auto o = call_within<ot::result<std::vector<oplog::op_record>>>(bound,
                                                                  [&](auto h) { s.load_ops(key, 0, std::nullopt, h); });
  check_error("load_ops", o, o.value ? o.value->error() : std::error_code{});
  auto v = call_within<ot::result<std::uint64_t>>(bound, [&](auto h) { s.version_at(key, 0, h); });
  check_error("version_at", v, v.value ? v.value->error() : std::error_code{});
  auto d = call_within<ot::result<std::vector<document_summary>>>(
      bound, [&](auto h) { s.list_documents(key.collection, "", 10, h); });
  check_error("list_documents", d, d.value ? d.value->error() : std::error_code{});
  auto c = call_within<std::error_code>(bound, [&](auto h) { s.commit(request, h); });
  check_error("commit", c, c.value ? *c.value : std::error_code{});
}

/// A short history with every kind of op, two sources and two snapshots.
void write_sample_history(store& s, doc_history& doc, const std::string& seed) {
  ASSERT_FALSE(doc.append(s, oplog::create_body{text_type, seed}, false, 1000));
  ASSERT_FALSE(doc.append(s, ot::op{C::insert("é🙂")}, true, 1001));
  commit_request other_source = doc.next(ot::op{C::insert("x")}, false, 1002, "src-b");
  ASSERT_FALSE(commit(s, other_source));
  doc.accept(other_source);
  ASSERT_FALSE(doc.append(s, oplog::delete_body{}, false, 1003));
  ASSERT_FALSE(doc.append(s, oplog::create_body{text_type, seed + "!"}, false, 1004));
  ASSERT_FALSE(doc.append(s, ot::op{C::insert("y")}, true, 1005));
}

void expect_history(store& s, const doc_history& doc) {
  auto ops = load_ops(s, doc.key, 0);
  ASSERT_TRUE(ops) << ops.error().message();
  EXPECT_EQ(*ops, doc.log);
  auto loaded = load(s, doc.key);
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(*oplog::replay(loaded->base, loaded->ops), doc.head);
}

// ---------------------------------------------------------------------------
// parse_redis_uri (no server needed)

TEST(RedisUri, ParsesHostPortAndDb) {
  auto parsed = parse_redis_uri("redis://h:1/2");
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->host, "h");
  EXPECT_EQ(parsed->port, 1);
  EXPECT_EQ(parsed->db, 2);

  parsed = parse_redis_uri("redis://127.0.0.1:65535/15");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->host, "127.0.0.1");
  EXPECT_EQ(parsed->port, 65535);
  EXPECT_EQ(parsed->db, 15);

  parsed = parse_redis_uri("redis://redis.internal:6380");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->host, "redis.internal");
  EXPECT_EQ(parsed->port, 6380);
  EXPECT_EQ(parsed->db, 0);
}

TEST(RedisUri, PortAndDbDefault) {
  const redis_options defaults;
  auto parsed = parse_redis_uri("redis://example.com");
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->host, "example.com");
  EXPECT_EQ(parsed->port, 6379);
  EXPECT_EQ(parsed->db, 0);
  // What the URI does not say keeps its default.
  EXPECT_EQ(parsed->key_prefix, defaults.key_prefix);
  EXPECT_EQ(parsed->command_timeout, defaults.command_timeout);
  EXPECT_EQ(parsed->connect_timeout, defaults.connect_timeout);
  EXPECT_EQ(parsed->reconnect_min, defaults.reconnect_min);
  EXPECT_EQ(parsed->reconnect_max, defaults.reconnect_max);

  parsed = parse_redis_uri("redis://example.com/4");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->port, 6379);
  EXPECT_EQ(parsed->db, 4);
}

TEST(RedisUri, ParsesSentinels) {
  auto parsed = parse_redis_uri("redis-sentinel://s1:5000,s2,10.0.0.3:26380/mymaster/3");
  ASSERT_TRUE(parsed) << parsed.error().message();
  ASSERT_EQ(parsed->sentinels.size(), 3U);
  EXPECT_EQ(parsed->sentinels[0], (std::pair<std::string, std::uint16_t>{"s1", 5000}));
  EXPECT_EQ(parsed->sentinels[1], (std::pair<std::string, std::uint16_t>{"s2", 26379}));
  EXPECT_EQ(parsed->sentinels[2], (std::pair<std::string, std::uint16_t>{"10.0.0.3", 26380}));
  EXPECT_EQ(parsed->master_name, "mymaster");
  EXPECT_EQ(parsed->db, 3);

  parsed = parse_redis_uri("redis-sentinel://127.0.0.1:26379/otsync");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->sentinels.size(), 1U);
  EXPECT_EQ(parsed->master_name, "otsync");
  EXPECT_EQ(parsed->db, 0);
  EXPECT_TRUE(parse_redis_uri("redis://h")->sentinels.empty());
}

TEST(RedisUri, ABadSentinelUriIsRefused) {
  std::string too_many = "redis-sentinel://";
  for (int i = 0; i < 33; ++i) too_many += (i ? ",h" : "h") + std::to_string(i);
  too_many += "/m";
  const std::string long_name = "redis-sentinel://h/" + std::string(257, 'm');
  for (const std::string& uri :
       {std::string("redis-sentinel://"), std::string("redis-sentinel://h"), std::string("redis-sentinel://h/"),
        std::string("redis-sentinel:///m"), std::string("redis-sentinel://h,/m"), std::string("redis-sentinel://,h/m"),
        std::string("redis-sentinel://h:0/m"), std::string("redis-sentinel://h:70000/m"),
        std::string("redis-sentinel://h/m/16"), std::string("redis-sentinel://h/m/x"),
        std::string("redis-sentinel://h:1:2/m"), too_many, long_name}) {
    auto parsed = parse_redis_uri(uri);
    ASSERT_FALSE(parsed) << uri;
    EXPECT_EQ(parsed.error(), open_errc::invalid_option) << uri;
  }
}

TEST(RedisUri, ABadPortIsRefused) {
  for (const char* uri :
       {"redis://h:", "redis://h:0", "redis://h:65536", "redis://h:99999999999999999999", "redis://h:port",
        "redis://h:-1", "redis://h:+1", "redis://h:12x", "redis://h: 1", "redis://h:1:2"}) {
    auto parsed = parse_redis_uri(uri);
    ASSERT_FALSE(parsed) << uri;
    EXPECT_EQ(parsed.error(), open_errc::invalid_option) << uri;
  }
}

TEST(RedisUri, ABadDbIsRefused) {
  for (const char* uri : {"redis://h:1/x", "redis://h:1/-1", "redis://h:1/1x", "redis://h:1/+1",
                          "redis://h:1/99999999999999999999", "redis://h/db"}) {
    auto parsed = parse_redis_uri(uri);
    ASSERT_FALSE(parsed) << uri;
    EXPECT_EQ(parsed.error(), open_errc::invalid_option) << uri;
  }
}

TEST(RedisUri, AnotherSchemeOrNoHostIsRefused) {
  for (const char* uri : {"", "redis:", "redis:/h:1", "rediss://h:1", "http://h:1", "h:1", "sqlite:x.db", "redis://",
                          "redis://:6379", "redis:///0"}) {
    auto parsed = parse_redis_uri(uri);
    ASSERT_FALSE(parsed) << uri;
    EXPECT_EQ(parsed.error(), open_errc::invalid_option) << uri;
  }
}

// ---------------------------------------------------------------------------
// Against the shared server

class RedisStore : public ::testing::Test {
 protected:
  void SetUp() override {
    OTSYNC_REQUIRE_REDIS_SERVER();
    ASSERT_EQ(shared_redis().error, "");
  }

  static redis_server& server() { return shared_redis().server; }
  static std::unique_ptr<redis_store> open(const std::string& prefix) {
    return open_connected(options_for(server().port(), prefix));
  }
  /// The keys under `prefix`, with the prefix removed.
  static std::set<std::string> keys_under(const std::string& prefix) {
    std::set<std::string> out;
    for (const auto& key : server().keys(glob_for_prefix(prefix))) {
      EXPECT_TRUE(key.starts_with(prefix)) << key;
      out.insert(key.substr(prefix.size()));
    }
    return out;
  }

  const std::string prefix_ = fresh_prefix();
};

/// Redis Cluster's hash tag of a key: the text between the first `{` and the
/// first `}` after it, when not empty (nullopt: the whole key is hashed).
std::optional<std::string> hash_tag(std::string_view key) {
  const auto open = key.find('{');
  if (open == std::string_view::npos) return std::nullopt;
  const auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return std::nullopt;
  return std::string(key.substr(open + 1, close - open - 1));
}

// Documents whose names trip naive key encodings: separators, braces (which
// would end a hash tag early), unicode.
const std::vector<doc_key> awkward_docs{
    {"notes", "plain"}, {"a/b", "c"}, {"a", "b/c"}, {"a:b", "c"},  {"a", "b:c"},          {"{x}", "y"},
    {"x", "}{"},        {"c", "{"},   {"c", "}"},   {"c", "{}"},   {"日本", "é/{}🙂"}, {"a", "b"},
    {"a b", "c"},       {"a", "b c"}, {"c", "ops"}, {"c", "head"}, {"c", "a\nb"},
};

TEST_F(RedisStore, EveryKeyOfADocumentSharesOneHashTag) {
  // Each document alone under its own prefix, and a companion document of the
  // same collection alone under another: the keys the first has and the
  // companion lacks are the document's own (the rest are per collection).
  std::set<std::string> tags;
  for (const doc_key& key : awkward_docs) {
    SCOPED_TRACE("collection '" + key.collection + "' id '" + key.id + "'");
    const std::string prefix = fresh_prefix();
    const std::string companion_prefix = fresh_prefix();
    {
      auto s = open(prefix);
      ASSERT_TRUE(s);
      doc_history doc{key};
      write_sample_history(*s, doc, key.id);
      auto t = open(companion_prefix);
      ASSERT_TRUE(t);
      doc_history companion{{key.collection, "companion-document"}};
      write_sample_history(*t, companion, "other");
    }
    const std::set<std::string> keys = keys_under(prefix);
    const std::set<std::string> companion_keys = keys_under(companion_prefix);
    std::set<std::string> own;
    std::ranges::set_difference(keys, companion_keys, std::inserter(own, own.end()));
    ASSERT_FALSE(own.empty()) << "no key of the document's own under " << prefix;
    std::set<std::string> own_tags;
    for (const auto& k : own) {
      const auto tag = hash_tag(prefix + k);
      EXPECT_TRUE(tag) << "key without a hash tag: " << prefix << k;
      if (tag) own_tags.insert(*tag);
    }
    EXPECT_EQ(own_tags.size(), 1U) << "the document's keys span several hash tags";
    if (own_tags.size() == 1) {
      EXPECT_TRUE(tags.insert(*own_tags.begin()).second)
          << "hash tag '" << *own_tags.begin() << "' shared with another document";
    }
  }
}

TEST_F(RedisStore, DocumentsWithAwkwardNamesNeverCollide) {
  auto s = open(prefix_);
  ASSERT_TRUE(s);
  std::vector<doc_history> docs;
  std::map<std::string, std::vector<std::string>> ids_by_collection;
  for (const doc_key& key : awkward_docs) {
    docs.emplace_back(key);
    write_sample_history(*s, docs.back(), key.collection + "|" + key.id);
    ids_by_collection[key.collection].push_back(key.id);
  }
  for (const auto& doc : docs) {
    SCOPED_TRACE("collection '" + doc.key.collection + "' id '" + doc.key.id + "'");
    expect_history(*s, doc);
  }
  for (auto& [collection, ids] : ids_by_collection) {
    SCOPED_TRACE("collection '" + collection + "'");
    std::ranges::sort(ids);  // byte order
    auto listed = list_documents(*s, collection);
    ASSERT_TRUE(listed) << listed.error().message();
    std::vector<std::string> listed_ids;
    for (const auto& row : *listed) {
      listed_ids.push_back(row.id);
      EXPECT_EQ(row.version, 6U) << row.id;
    }
    EXPECT_EQ(listed_ids, ids);
  }
}

TEST_F(RedisStore, AResentOpIsRefusedAtAnyVersionByAnyInstance) {
  // Two stores on one prefix stand for two otsyncd instances.
  auto first = open(prefix_);
  auto second = open(prefix_);
  ASSERT_TRUE(first && second);
  doc_history doc{{"c", "dedupe"}};
  auto commit_as = [&](store& s, oplog::op_body body, const std::string& src, std::uint64_t seq, bool snapshot) {
    commit_request request = doc.next(std::move(body), snapshot, 0, src);
    request.op.seq = seq;
    return std::pair{commit(s, request), request};
  };
  for (auto [s, body, src, seq] : {std::tuple{first.get(), oplog::op_body{oplog::create_body{text_type, ""}}, "a", 1},
                                   std::tuple{first.get(), oplog::op_body{ot::op{C::insert("1")}}, "a", 2},
                                   std::tuple{second.get(), oplog::op_body{ot::op{C::insert("2")}}, "b", 1}}) {
    auto [error, request] = commit_as(*s, body, src, static_cast<std::uint64_t>(seq), false);
    ASSERT_EQ(error, std::error_code{});
    doc.accept(request);
  }
  const std::vector<oplog::op_record> before = doc.log;

  // The same (src, seq) again, now at the head (version 3): a resend that
  // crossed a reconnect, whatever instance it reaches.
  for (auto [s, src, seq] : {std::tuple{second.get(), "a", 2}, std::tuple{first.get(), "a", 1},
                             std::tuple{first.get(), "b", 1}, std::tuple{second.get(), "b", 1}}) {
    SCOPED_TRACE(std::string("src ") + src + " seq " + std::to_string(seq));
    auto [error, request] = commit_as(*s, ot::op{C::insert("again")}, src, static_cast<std::uint64_t>(seq), true);
    EXPECT_EQ(error, errc::version_conflict);
  }
  EXPECT_EQ(*load_ops(*first, doc.key, 0), before);
  auto loaded = load(*second, doc.key);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->version_reached(), 3U);
  EXPECT_EQ(loaded->base, oplog::snapshot{});  // no snapshot from a refused commit
  EXPECT_EQ(list_documents(*first, "c")->at(0).version, 3U);

  // Fresh sequence numbers go on, from either instance.
  auto [next_a, request_a] = commit_as(*second, ot::op{C::insert("3")}, "a", 3, false);
  ASSERT_EQ(next_a, std::error_code{});
  doc.accept(request_a);
  auto [next_c, request_c] = commit_as(*first, ot::op{C::insert("4")}, "c", 2, false);
  ASSERT_EQ(next_c, std::error_code{});
  doc.accept(request_c);
  expect_history(*first, doc);
}

std::uint64_t script_calls(const redis_server& server) {
  // cmdstat_evalsha:calls=N,usec=...; a commit may be EVALSHA, EVAL or FCALL.
  std::uint64_t total = 0;
  for (const char* name : {"cmdstat_evalsha", "cmdstat_eval", "cmdstat_fcall"}) {
    const std::string field = server.info_field("commandstats", name);
    if (field.starts_with("calls=")) total += std::stoull(field.substr(6));
  }
  return total;
}

TEST_F(RedisStore, ACommitIsOneScriptCall) {
  auto s = open(prefix_);
  ASSERT_TRUE(s);
  doc_history doc{{"c", "round-trips"}};
  ASSERT_FALSE(doc.append(*s, oplog::create_body{text_type, ""}));  // warms the script cache
  constexpr std::uint64_t commits = 20;
  const std::uint64_t scripts_before = script_calls(server());
  const redis_store_stats stats_before = s->stats();
  for (std::uint64_t i = 0; i < commits; ++i) ASSERT_FALSE(doc.append(*s, ot::op{C::insert("x")}, i % 5 == 0));
  const redis_store_stats stats_after = s->stats();
  EXPECT_EQ(script_calls(server()) - scripts_before, commits);
  EXPECT_GE(stats_after.commands - stats_before.commands, commits);
  EXPECT_LE(stats_after.commands - stats_before.commands, commits + 2) << "more than one round trip per commit";
  EXPECT_GE(stats_after.connects, 1U);
  EXPECT_EQ(stats_after.timeouts, 0U);
  expect_history(*s, doc);
}

// hiredis writes with write(): once a store has connected, a write to a Redis that just went away
// must not end the process with SIGPIPE (only the default action is replaced).
TEST_F(RedisStore, AConnectedStoreLeavesNoSigpipeToEndTheProcess) {
  auto s = open(prefix_);
  ASSERT_TRUE(s);
  doc_history doc{{"c", "sigpipe"}};
  ASSERT_FALSE(doc.append(*s, oplog::create_body{text_type, ""}));
  struct sigaction current {};
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &current), 0);
  EXPECT_EQ(current.sa_handler, SIG_IGN);
}

TEST_F(RedisStore, CommitsGoOnAfterTheScriptCacheIsFlushed) {
  auto s = open(prefix_);
  ASSERT_TRUE(s);
  doc_history doc{{"c", "script-flush"}};
  ASSERT_FALSE(doc.append(*s, oplog::create_body{text_type, ""}));
  ASSERT_FALSE(doc.append(*s, ot::op{C::insert("a")}));
  // An operator's SCRIPT FLUSH: the next EVALSHA gets NOSCRIPT, and the call
  // goes again with the script text, once.
  auto flushed = server().command({"SCRIPT", "FLUSH"});
  ASSERT_TRUE(flushed && !flushed->is_error());
  ASSERT_FALSE(doc.append(*s, ot::op{C::insert("b")}));
  ASSERT_FALSE(doc.append(*s, ot::op{C::insert("c")}, true));
  expect_history(*s, doc);
}

// ---------------------------------------------------------------------------
// Outages, each on a redis-server of its own

class RedisOutage : public ::testing::Test {
 protected:
  void SetUp() override {
    OTSYNC_REQUIRE_REDIS_SERVER();
    const std::string error = server_.start();
    ASSERT_EQ(error, "");
  }
  std::unique_ptr<redis_store> open() { return open_connected(options()); }
  [[nodiscard]] redis_options options() const { return outage_options(server_.port(), prefix_); }
  /// Within the command timeout, plus scheduling slack.
  [[nodiscard]] ms bound() const { return options().command_timeout + slack; }
  void restart() {
    const std::string error = server_.restart();
    ASSERT_EQ(error, "");
  }

  redis_server server_;
  const std::string prefix_ = fresh_prefix();
};

TEST_F(RedisOutage, WithMinReplicasNothingIsAcknowledgedUntilAReplicaHasIt) {
  auto opts = options();
  opts.min_replicas = 1;
  opts.wait_timeout = std::chrono::milliseconds(200);
  auto s = open_connected(opts);
  ASSERT_TRUE(s);
  doc_history doc{{"c", "replicated"}};
  // No replica: the commit is on the master, but is not acknowledged.
  commit_request create = doc.next(oplog::create_body{text_type, "x"});
  EXPECT_EQ(commit(*s, create), errc::unavailable);
  // Nor found by a catch-up (which would acknowledge it): reads wait for the replicas too.
  auto unconfirmed = load(*s, doc.key);
  ASSERT_FALSE(unconfirmed);
  EXPECT_EQ(unconfirmed.error(), errc::unavailable);
  // A replica comes and syncs: the same read now confirms it, and the commit is there.
  ASSERT_TRUE(server_.command({"CONFIG", "SET", "repl-diskless-sync-delay", "0"}));  // sync at once
  redis_server replica;
  ASSERT_EQ(replica.start(), "");
  ASSERT_TRUE(replica.command({"REPLICAOF", "127.0.0.1", std::to_string(server_.port())}));
  ASSERT_TRUE(eventually([&] { return replica.info_field("replication", "master_link_status") == "up"; }, 20s));
  auto confirmed = load(*s, doc.key);
  ASSERT_TRUE(confirmed) << confirmed.error().message();
  doc.accept(create);
  EXPECT_EQ(confirmed->version_reached(), 1U);
  EXPECT_EQ(doc.append(*s, ot::op{C::insert("y")}), std::error_code{});
  ASSERT_TRUE(eventually(
      [&] {
        auto reply = replica.command({"LLEN", opts.key_prefix + redis_doc_tag(doc.key) + ":ops"});
        return reply && reply->integer == 2;
      },
      5s));
  auto health = s->health();
  auto unreplicated = std::find_if(health.values.begin(), health.values.end(), [](const health_value& v) {
    return v.name == "otsync_redis_unreplicated_commits_total";
  });
  ASSERT_NE(unreplicated, health.values.end());
  EXPECT_EQ(unreplicated->value, 1U);
}

TEST_F(RedisOutage, RedisStoppedCallsFailUnavailableWithinTheTimeout) {
  auto s = open();
  ASSERT_TRUE(s);
  doc_history doc{{"c", "outage"}};
  write_sample_history(*s, doc, "kept");
  server_.stop();
  // At once, before the store has necessarily noticed.
  commit_request request = doc.next(ot::op{C::insert("lost")});
  auto first = call_within<std::error_code>(bound(), [&](auto h) { s->commit(request, h); });
  ASSERT_TRUE(first.value) << "no answer within " << bound().count() << " ms";
  EXPECT_EQ(*first.value, errc::unavailable);

  EXPECT_TRUE(eventually([&] { return !s->connected(); }, bound())) << "connected() still true";
  expect_every_call_unavailable_within(*s, doc.key, request, bound());
  // Still down a while later (the store retrying in the background).
  std::this_thread::sleep_for(options().reconnect_max * 3);
  EXPECT_FALSE(s->connected());
  expect_every_call_unavailable_within(*s, doc.key, request, bound());
}

TEST_F(RedisOutage, RedisRestartedTheStoreReconnectsByItself) {
  auto s = open();
  ASSERT_TRUE(s);
  std::vector<doc_history> docs;
  for (const char* id : {"one", "two", "three"}) {
    docs.emplace_back(doc_key{"c", id});
    write_sample_history(*s, docs.back(), id);
  }
  server_.stop();
  ASSERT_TRUE(eventually([&] { return !s->connected(); }, bound()));
  restart();
  ASSERT_TRUE(eventually([&] { return s->connected(); }, connect_wait)) << "no reconnect";
  EXPECT_GE(s->stats().connects, 2U);

  for (const auto& doc : docs) expect_history(*s, doc);  // the AOF brought everything back
  // New commits work at once (the script cache was lost with the process).
  for (auto& doc : docs) ASSERT_EQ(doc.append(*s, ot::op{C::insert("after")}, true), std::error_code{});
  doc_history fresh{{"c", "fresh"}};
  ASSERT_EQ(fresh.append(*s, oplog::create_body{text_type, "new"}), std::error_code{});
  for (const auto& doc : docs) expect_history(*s, doc);
  EXPECT_EQ(list_documents(*s, "c")->size(), 4U);
}

TEST_F(RedisOutage, AnAcknowledgedCommitSurvivesARedisCrash) {
  // appendfsync always: Redis answers only once the AOF is on disk, so every
  // acked commit is there after a SIGKILL, mid-stream.
  auto s = open();
  ASSERT_TRUE(s);
  constexpr std::size_t docs_count = 4;
  constexpr std::size_t per_doc = 60;
  std::vector<doc_history> intended;
  std::vector<commit_request> requests;  // interleaved across documents, each in version order
  for (std::size_t d = 0; d < docs_count; ++d) intended.emplace_back(doc_key{"c", "crash-" + std::to_string(d)});
  for (std::size_t k = 0; k < per_doc; ++k) {
    for (auto& doc : intended) {
      commit_request request =
          k == 0 ? doc.next(oplog::create_body{text_type, ""}) : doc.next(ot::op{C::insert("k")}, k % 7 == 0);
      doc.accept(request);
      requests.push_back(std::move(request));
    }
  }
  struct outcome {
    std::promise<std::error_code> promise;
    std::future<std::error_code> future = promise.get_future();
  };
  std::vector<std::shared_ptr<outcome>> outcomes;
  std::atomic<std::size_t> acked{0};
  for (const auto& request : requests) {
    auto o = std::make_shared<outcome>();
    outcomes.push_back(o);
    s->commit(request, [o, &acked](std::error_code e) {
      if (!e) acked.fetch_add(1);
      o->promise.set_value(e);
    });
  }
  eventually([&] { return acked.load() >= requests.size() / 5; }, 10s);
  server_.kill();

  // Every handler comes (ok, or unavailable for what was in flight or queued).
  std::map<doc_key, std::uint64_t> acked_up_to;  // highest acked version + 1, per document
  for (std::size_t i = 0; i < requests.size(); ++i) {
    ASSERT_EQ(outcomes[i]->future.wait_for(bound() * 4), std::future_status::ready) << "commit " << i << " unanswered";
    const std::error_code e = outcomes[i]->future.get();
    EXPECT_TRUE(!e || e == errc::unavailable || e == errc::version_conflict) << e.message();
    if (!e) {
      auto& up_to = acked_up_to[requests[i].key];
      up_to = std::max(up_to, requests[i].op.version + 1);
    }
  }
  restart();
  ASSERT_TRUE(eventually([&] { return s->connected(); }, connect_wait)) << "no reconnect";
  for (const auto& doc : intended) {
    SCOPED_TRACE(doc.key.id);
    auto ops = load_ops(*s, doc.key, 0);
    ASSERT_TRUE(ops) << ops.error().message();
    // A prefix of what was sent, holding at least every acked op.
    ASSERT_LE(ops->size(), doc.log.size());
    EXPECT_EQ(*ops, std::vector(doc.log.begin(), doc.log.begin() + static_cast<std::ptrdiff_t>(ops->size())));
    EXPECT_GE(ops->size(), acked_up_to[doc.key]) << "an acknowledged commit was lost";
    auto loaded = load(*s, doc.key);
    ASSERT_TRUE(loaded);
    EXPECT_EQ(*oplog::replay(loaded->base, loaded->ops), doc.at(ops->size()));
  }
}

TEST_F(RedisOutage, AHungRedisTimesOutAndTheStoreRecovers) {
  auto s = open();
  ASSERT_TRUE(s);
  doc_history doc{{"c", "hung"}};
  write_sample_history(*s, doc, "before");
  const redis_store_stats before = s->stats();
  server_.pause();  // the connection stays open; nothing answers
  commit_request unknown_outcome = doc.next(ot::op{C::insert("maybe")});
  auto c = call_within<std::error_code>(bound(), [&](auto h) { s->commit(unknown_outcome, h); });
  ASSERT_TRUE(c.value) << "no answer within " << bound().count() << " ms from a hung Redis";
  EXPECT_EQ(*c.value, errc::unavailable);
  auto l = call_within<ot::result<loaded_document>>(bound(), [&](auto h) { s->load(doc.key, std::nullopt, h); });
  ASSERT_TRUE(l.value);
  EXPECT_EQ(l.value->error(), errc::unavailable);
  EXPECT_GT(s->stats().timeouts, before.timeouts);
  server_.resume();

  // Recovers on its own; the timed-out commit is in or out, never half.
  ASSERT_TRUE(eventually(
      [&] {
        auto r = call_within<ot::result<std::vector<oplog::op_record>>>(
            bound(), [&](auto h) { s->load_ops(doc.key, 0, std::nullopt, h); });
        return r.value && r.value->has_value();
      },
      connect_wait))
      << "the store did not recover after Redis resumed";
  auto ops = load_ops(*s, doc.key, 0);
  ASSERT_TRUE(ops);
  if (ops->size() == doc.log.size() + 1) {
    EXPECT_EQ(ops->back(), unknown_outcome.op);
    doc.accept(unknown_outcome);
  }
  EXPECT_EQ(*ops, doc.log);
  ASSERT_EQ(doc.append(*s, ot::op{C::insert("after")}), std::error_code{});
  expect_history(*s, doc);
}

TEST_F(RedisOutage, RedisDownAtStartIsNotAnError) {
  server_.stop();
  auto s = open_redis_store(options());
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->connected());
  doc_history doc{{"c", "late"}};
  expect_every_call_unavailable_within(*s, doc.key, doc.next(oplog::create_body{text_type, ""}), bound());
  restart();
  ASSERT_TRUE(eventually([&] { return s->connected(); }, connect_wait)) << "no connection once Redis is up";
  ASSERT_EQ(doc.append(*s, oplog::create_body{text_type, "up"}), std::error_code{});
  expect_history(*s, doc);
}

// The host is a name: looked up off the store's thread (Asio's resolver), an IPv4 address first, as
// hiredis would (where "localhost" also names ::1, this redis-server listens on 127.0.0.1 only).
TEST_F(RedisOutage, AHostNameIsLookedUpAndConnected) {
  auto opts = options();
  opts.host = "localhost";
  auto s = open_connected(opts);
  ASSERT_TRUE(s);
  doc_history doc{{"c", "by-name"}};
  ASSERT_EQ(doc.append(*s, oplog::create_body{text_type, "named"}), std::error_code{});
  expect_history(*s, doc);
  // After a restart too: every reconnect looks the name up again.
  restart();
  ASSERT_TRUE(eventually([&] { return s->connected(); }, connect_wait)) << "no reconnect by name";
  ASSERT_EQ(doc.append(*s, ot::op{C::insert("again")}), std::error_code{});
  expect_history(*s, doc);
}

// A name that resolves to nothing (RFC 6761's .invalid), in IPv4 or IPv6: never connected, every call
// unavailable within the timeout, and the store keeps trying.
TEST_F(RedisOutage, AHostNameThatDoesNotResolveIsUnavailable) {
  auto opts = options();
  opts.host = "otsync-no-such-redis.invalid";
  auto s = open_redis_store(opts);
  ASSERT_TRUE(s);
  doc_history doc{{"c", "nowhere"}};
  expect_every_call_unavailable_within(*s, doc.key, doc.next(oplog::create_body{text_type, ""}), bound());
  std::this_thread::sleep_for(opts.reconnect_max * 3);
  EXPECT_FALSE(s->connected());
  expect_every_call_unavailable_within(*s, doc.key, doc.next(oplog::create_body{text_type, ""}), bound());
}

TEST_F(RedisOutage, CloseWithRedisHungCallsEveryHandlerOnce) {
  auto s = open();
  ASSERT_TRUE(s);
  doc_history doc{{"c", "closing"}};
  ASSERT_FALSE(doc.append(*s, oplog::create_body{text_type, ""}));
  server_.pause();
  constexpr int calls = 10;
  auto counts = std::make_shared<std::array<std::atomic<int>, calls * 2>>();
  for (int i = 0; i < calls; ++i) {
    s->commit(doc.next(ot::op{C::insert("x")}),
              [counts, i](std::error_code) { (*counts)[static_cast<std::size_t>(i)]++; });
    s->load(doc.key, std::nullopt, [counts, i](auto) { (*counts)[static_cast<std::size_t>(calls + i)]++; });
  }
  auto closing = std::async(std::launch::async, [&] { s->close(); });
  const auto close_bound = bound() * 2 + 5s;
  if (closing.wait_for(close_bound) != std::future_status::ready) {
    server_.resume();  // let it finish, so that the test ends rather than hangs
    ADD_FAILURE() << "close() with Redis hung did not return within the command timeout";
    closing.wait();
  }
  for (std::size_t i = 0; i < counts->size(); ++i) EXPECT_EQ((*counts)[i].load(), 1) << "handler " << i;
  server_.resume();
  EXPECT_EQ(load(*s, doc.key).error(), errc::closed);
}

TEST_F(RedisStore, AStoredSnapshotOfTheWrongShapeIsCorruptNotACrash) {
  // Whoever can write to Redis can put anything in a snapshot: a creator
  // record with fields of the wrong type must read as corrupt data, never
  // throw on the store's thread.
  auto s = open(prefix_);
  ASSERT_TRUE(s);
  doc_history doc{{"notes", "snap"}};
  ASSERT_FALSE(doc.append(*s, oplog::create_body{text_type, "abc"}, true));
  std::string snapdata;
  for (const auto& key : keys_under(prefix_)) {
    if (key.ends_with("snapdata")) snapdata = prefix_ + key;
  }
  ASSERT_FALSE(snapdata.empty());
  auto fields = server().command({"HKEYS", snapdata});
  ASSERT_TRUE(fields && !fields->elements.empty());
  for (const char* bad : {R"({"type":"t","data":"x","created":{"src":"a","seq":"one","v":0}})",
                          R"({"type":"t","data":"x","created":{"src":7,"seq":1,"v":0}})",
                          R"({"type":"t","data":"x","created":{"src":"a","seq":1,"v":-1}})"}) {
    SCOPED_TRACE(bad);
    ASSERT_TRUE(server().command({"HSET", snapdata, fields->elements[0].str, bad}));
    auto loaded = load(*s, doc.key);
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error(), make_error_code(errc::corrupt));
  }
  // The store carries on.
  doc_history other{{"notes", "other"}};
  EXPECT_FALSE(other.append(*s, oplog::create_body{text_type, "fine"}));
  EXPECT_TRUE(load(*s, other.key));
}

}  // namespace
}  // namespace otsync::store::test
