#include "otsync/store/redis_store.hpp"

#include <atomic>
#include <charconv>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include "../redis/client.hpp"
#include "../redis/cluster_slots.hpp"
#include "../redis/keys.hpp"
#include "../redis/stored_op.hpp"
#include "otsync/protocol/json_parse.hpp"
#include "otsync/store/open_error.hpp"
#include "request_checks.hpp"

namespace otsync::store {
namespace {

using nlohmann::json;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::strict);
}

// Appends N consecutive ops if the head is at the first one's version and no
// op's (src, seq) is in the log yet (all checks before any write, so it is all
// or nothing); moves the head; stores the optional snapshots; publishes each
// op. One script, so one atomic step in Redis.
// KEYS: head, ops, ts, snaps, snapdata, seen.
// ARGV: N, channel ('' = publish nothing: with --redis-min-replicas the store
// publishes after WAIT), publisher tag (prepended to each published op, so an
// instance can skip its own), the publish command (PUBLISH, or SPUBLISH in a
// cluster: the channel has the document's hash tag, so the same shard), then
// per op 10 fields: version, op JSON, ts,
// src, seq, type ('' = none), create src, create seq, create v ('' = none),
// snapshot JSON ('' = none).
constexpr std::size_t commit_fields = 10;
constexpr const char* commit_script = R"lua(
local n = tonumber(ARGV[1])
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[5]) then return 'conflict' end
for i = 0, n - 1 do
  local b = 4 + i * 10
  if ARGV[b + 4] ~= '' and redis.call('HEXISTS', KEYS[6], ARGV[b + 4] .. '\n' .. ARGV[b + 5]) == 1 then
    return 'duplicate'
  end
end
for i = 0, n - 1 do
  local b = 4 + i * 10
  if ARGV[b + 4] ~= '' then redis.call('HSET', KEYS[6], ARGV[b + 4] .. '\n' .. ARGV[b + 5], ARGV[b + 1]) end
  redis.call('RPUSH', KEYS[2], ARGV[b + 2])
  redis.call('ZADD', KEYS[3], ARGV[b + 3], ARGV[b + 1])
  v = v + 1
  if ARGV[b + 9] ~= '' then
    redis.call('HSET', KEYS[1], 'csrc', ARGV[b + 7], 'cseq', ARGV[b + 8], 'cv', ARGV[b + 9])
  else
    redis.call('HDEL', KEYS[1], 'csrc', 'cseq', 'cv')
  end
  if ARGV[b + 10] ~= '' then
    redis.call('ZADD', KEYS[4], v, tostring(v))
    redis.call('HSET', KEYS[5], tostring(v), ARGV[b + 10])
  end
  if ARGV[2] ~= '' then redis.call(ARGV[4], ARGV[2], ARGV[3] .. ARGV[b + 2]) end
end
local last = 4 + (n - 1) * 10
redis.call('HSET', KEYS[1], 'v', v, 'type', ARGV[last + 6])
return 'ok'
)lua";

// The greatest snapshot at or below the target and the ops after it, in one
// consistent read. KEYS: head, ops, snaps, snapdata. ARGV: target ('' = head).
constexpr const char* load_script = R"lua(
local head = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local target = head
if ARGV[1] ~= '' then target = math.min(tonumber(ARGV[1]), head) end
local snap = redis.call('ZREVRANGEBYSCORE', KEYS[3], target, '-inf', 'LIMIT', 0, 1)
local sv = 0
local sj = ''
if #snap > 0 then
  sv = tonumber(snap[1])
  sj = redis.call('HGET', KEYS[4], snap[1]) or ''
end
local ops = {}
if target > sv then ops = redis.call('LRANGE', KEYS[2], sv, target - 1) end
return {tostring(head), tostring(sv), sj, ops}
)lua";

std::string encode_snapshot(const oplog::snapshot& s) {
  json j = {{"type", s.type_uri ? json(*s.type_uri) : json()}, {"data", s.data}};
  if (s.created) j["created"] = {{"src", s.created->src}, {"seq", s.created->seq}, {"v", s.created->version}};
  return dump(j);
}

ot::result<oplog::snapshot> decode_snapshot(std::string_view text, std::uint64_t version) {
  json j = protocol::parse_json_bounded(text);
  if (!j.is_object()) return errc::corrupt;
  oplog::snapshot s;
  s.version = version;
  if (j.contains("type") && j["type"].is_string()) s.type_uri = j["type"].get<std::string>();
  if (j.contains("data") && j["data"].is_string()) s.data = j["data"].get<std::string>();
  if (j.contains("created") && j["created"].is_object()) {
    // Field by field, types checked: nlohmann's value() throws on a wrong type, and a throw here
    // would take the store's thread down; data that does not decode is corrupt, never a crash.
    const auto& c = j["created"];
    oplog::create_record created;
    if (auto it = c.find("src"); it != c.end()) {
      if (!it->is_string()) return errc::corrupt;
      created.src = it->get<std::string>();
    }
    for (auto [name, field] : {std::pair{"seq", &created.seq}, std::pair{"v", &created.version}}) {
      if (auto it = c.find(name); it != c.end()) {
        if (!it->is_number_unsigned()) return errc::corrupt;
        *field = it->get<std::uint64_t>();
      }
    }
    s.created = std::move(created);
  }
  return s;
}

std::optional<std::uint64_t> to_count(std::string_view s) {
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return std::nullopt;
  return n;
}

std::string_view reply_text(const redisReply* r) {
  if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return {};
  return {r->str, r->len};
}

// The store's scripts, by their index in the client.
constexpr redis::client::script_id commit_script_id = 0;
constexpr redis::client::script_id load_script_id = 1;

class redis_store_impl final : public redis_store {
 public:
  explicit redis_store_impl(redis_options options)
      : options_(std::move(options)),
        publisher_tag_(redis::publisher_tag(options_.instance_id)),
        client_(redis::client_options_from(options_), {commit_script, load_script}, {}) {
    client_.start();
  }

  ~redis_store_impl() override { close(); }

  bool connected() const override { return client_.connected(); }
  redis_store_stats stats() const override { return {client_.commands(), client_.connects(), client_.timeouts()}; }
  backend_health health() const override {
    const bool up = client_.connected();
    const std::string where = !options_.cluster_seeds.empty()
                                  ? "cluster via " + options_.cluster_seeds.front().first + ":" +
                                        std::to_string(options_.cluster_seeds.front().second)
                              : options_.sentinels.empty() ? options_.host + ":" + std::to_string(options_.port)
                                                           : "sentinel master " + options_.master_name;
    const auto problem = up ? std::string() : client_.problem();
    return {up,
            "redis " + where + "/" + std::to_string(options_.db) + (up ? " connected" : " unreachable") +
                (problem.empty() ? "" : ": " + problem),
            {{"otsync_redis_up", "1 while the store's Redis connection is up (readiness)", health_kind::gauge,
              up ? 1U : 0U},
             {"otsync_redis_commands_total", "Commands the store sent to Redis since start (a commit is one EVALSHA)",
              health_kind::total, client_.commands()},
             {"otsync_redis_connects_total", "Successful store connections to Redis since start", health_kind::total,
              client_.connects()},
             {"otsync_redis_timeouts_total", "Redis commands that got no reply within --redis-timeout-ms",
              health_kind::total, client_.timeouts()},
             {"otsync_redis_master_switches_total",
              "Sentinel: the store's connection moved to another master (+switch-master, READONLY, a new address); "
              "cluster: the slot map changed (a failover, a migration)",
              health_kind::total, client_.master_switches()},
             {"otsync_redis_redirects_total", "Cluster: MOVED and ASK redirections the store followed",
              health_kind::total, client_.redirects()},
             {"otsync_redis_unreplicated_commits_total",
              "Commits not confirmed on --redis-min-replicas replicas in time (not acknowledged as durable)",
              health_kind::total, unreplicated_.load()}}};
  }

  void load(const doc_key& key, std::optional<std::uint64_t> version, handler<loaded_document> done) override {
    if (!detail::valid_key(key)) return done(errc::invalid_argument);
    std::vector<std::string> argv{"EVAL",
                                  "",
                                  "4",
                                  k(key, "head"),
                                  k(key, "ops"),
                                  k(key, "snaps"),
                                  k(key, "snapdata"),
                                  version ? std::to_string(*version) : std::string{}};
    run_script(load_script_id, std::move(argv), std::move(done),
               [](const redisReply* r) -> ot::result<loaded_document> {
                 if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) return errc::corrupt;
                 auto sv = to_count(reply_text(r->element[1]));
                 if (!sv) return errc::corrupt;
                 loaded_document out;
                 if (*sv > 0) {
                   auto snap = decode_snapshot(reply_text(r->element[2]), *sv);
                   if (!snap) return snap.error();
                   out.base = std::move(*snap);
                 }
                 const auto* ops = r->element[3];
                 if (ops->type != REDIS_REPLY_ARRAY) return errc::corrupt;
                 for (std::size_t i = 0; i < ops->elements; ++i) {
                   auto op = redis::decode_stored_op(reply_text(ops->element[i]));
                   if (!op || op->version != out.base.version + i) return errc::corrupt;
                   out.ops.push_back(std::move(*op));
                 }
                 return out;
               });
  }

  void load_ops(const doc_key& key, std::uint64_t from, std::optional<std::uint64_t> to,
                handler<std::vector<oplog::op_record>> done) override {
    if (!detail::valid_key(key)) return done(errc::invalid_argument);
    if (to && *to < from) return done(errc::invalid_argument);
    if (to && *to == from) {
      post_result(std::move(done), std::vector<oplog::op_record>{});
      return;
    }
    std::vector<std::string> argv{"LRANGE", k(key, "ops"), std::to_string(from),
                                  to ? std::to_string(*to - 1) : std::string("-1")};
    run(std::move(argv), std::move(done), [from](const redisReply* r) -> ot::result<std::vector<oplog::op_record>> {
      if (r->type != REDIS_REPLY_ARRAY) return errc::corrupt;
      std::vector<oplog::op_record> ops;
      for (std::size_t i = 0; i < r->elements; ++i) {
        auto op = redis::decode_stored_op(reply_text(r->element[i]));
        if (!op || op->version != from + i) return errc::corrupt;
        ops.push_back(std::move(*op));
      }
      return ops;
    });
  }

  void version_at(const doc_key& key, std::int64_t timestamp_ms, handler<std::uint64_t> done) override {
    if (!detail::valid_key(key)) return done(errc::invalid_argument);
    std::vector<std::string> argv{"ZCOUNT", k(key, "ts"), "-inf", std::to_string(timestamp_ms)};
    run(std::move(argv), std::move(done), [](const redisReply* r) -> ot::result<std::uint64_t> {
      if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) return errc::corrupt;
      return static_cast<std::uint64_t>(r->integer);
    });
  }

  void commit(commit_request request, commit_handler done) override {
    std::vector<commit_request> one;
    one.push_back(std::move(request));
    commit_all(std::move(one), std::move(done));
  }

  bool atomic_batches() const noexcept override { return true; }

  void commit_all(std::vector<commit_request> requests, commit_handler done) override {
    if (auto e = detail::check_commit_all(requests)) return done(e);
    const auto& key = requests.front().key;
    std::vector<std::string> argv{
        "EVAL", "", "6", k(key, "head"), k(key, "ops"), k(key, "ts"), k(key, "snaps"), k(key, "snapdata"),
        k(key, "seen"), std::to_string(requests.size()),
        // With min_replicas, others hear of an op only once the replicas have it.
        options_.min_replicas > 0 ? std::string() : redis::op_channel(options_.key_prefix, key.collection, key.id),
        publisher_tag_, publish_command()};
    argv.reserve(argv.size() + requests.size() * commit_fields);
    std::vector<std::string> deferred;  // with min_replicas: what the script would have published
    for (auto& request : requests) {
      // Encoded once: the same bytes go into the list and out on the channel.
      auto op = redis::encode_stored_op(request.op);
      if (!op) return done(make_error_code(errc::invalid_argument));
      const auto& after = request.after;
      argv.push_back(std::to_string(request.op.version));
      if (options_.min_replicas > 0) deferred.push_back(publisher_tag_ + *op);
      argv.push_back(std::move(*op));
      argv.push_back(std::to_string(request.op.timestamp_ms));
      argv.push_back(request.op.src);
      argv.push_back(std::to_string(request.op.seq));
      argv.push_back(after.type_uri.value_or(""));
      argv.push_back(after.created ? after.created->src : "");
      argv.push_back(after.created ? std::to_string(after.created->seq) : "");
      argv.push_back(after.created ? std::to_string(after.created->version) : "");
      argv.push_back(request.store_snapshot ? encode_snapshot(after) : "");
    }
    auto index = std::vector<std::string>{"ZADD", index_key(key.collection), "NX", "0", key.id};
    if (closed_) return done(make_error_code(errc::closed));
    const bool first_op = requests.front().op.version == 0;
    auto channel = redis::op_channel(options_.key_prefix, key.collection, key.id);
    auto head_key = k(key, "head");
    client_.post([this, argv = std::move(argv), index = std::move(index), first_op, done = std::move(done),
                  deferred = std::move(deferred), channel = std::move(channel),
                  head_key = std::move(head_key)]() mutable {
      client_.send_script(
          commit_script_id, std::move(argv),
          [this, index = std::move(index), first_op, done = std::move(done), deferred = std::move(deferred),
           channel = std::move(channel), head_key = std::move(head_key)](const redisReply* r) mutable {
            if (!r) return done(make_error_code(errc::unavailable));
            auto status = reply_text(r);
            if (r->type == REDIS_REPLY_ERROR) return done(make_error_code(errc::unavailable));
            if (status == "ok") {
              // A document's first op adds it to its collection's listing (another
              // slot, so not in the script; in a cluster another shard): not awaited.
              if (first_op) client_.send(index, [](const redisReply*) {});
              return after_replicated(std::move(done), {}, std::move(channel), std::move(deferred), head_key);
            }
            // A duplicate (src, seq) means an op is already in the log: the caller
            // reloads and its rebase finds it, as after any lost race. With
            // --redis-min-replicas it is acknowledged then, so it must be on the replicas too.
            if (status == "duplicate") {
              // With min_replicas the op may never have been published (its first
              // WAIT failed): once confirmed, the others read the log again.
              return after_replicated(std::move(done), make_error_code(errc::version_conflict), std::move(channel),
                                      options_.min_replicas > 0 ? std::vector<std::string>{publisher_tag_ + "resync"}
                                                                : std::vector<std::string>{},
                                      head_key);
            }
            if (status == "conflict") return done(make_error_code(errc::version_conflict));
            done(make_error_code(errc::corrupt));
          });
    });
  }

  void list_documents(const std::string& collection, const std::string& after_id, std::size_t limit,
                      handler<std::vector<document_summary>> done) override {
    if (collection.empty()) return done(errc::invalid_argument);
    if (closed_) return done(errc::closed);
    std::vector<std::string> argv{
        "ZRANGEBYLEX", index_key(collection), after_id.empty() ? "-" : "(" + after_id, "+", "LIMIT",
        "0",           std::to_string(limit)};
    client_.post([this, collection, argv = std::move(argv), done = std::move(done)]() mutable {
      client_.send(argv, [this, collection, done = std::move(done)](const redisReply* r) mutable {
        if (!r) return done(errc::unavailable);
        if (r->type != REDIS_REPLY_ARRAY) return done(errc::corrupt);
        auto rows = std::make_shared<std::vector<document_summary>>();
        for (std::size_t i = 0; i < r->elements; ++i) rows->push_back({std::string(reply_text(r->element[i])), 0, {}});
        if (rows->empty()) return done(std::move(*rows));
        // Every head at once (in a cluster on several shards, replies in any order): the last to
        // come back completes.
        auto remaining = std::make_shared<std::size_t>(rows->size());
        auto failed = std::make_shared<bool>(false);
        auto shared_done = std::make_shared<handler<std::vector<document_summary>>>(std::move(done));
        for (std::size_t i = 0; i < rows->size(); ++i) {
          client_.send({"HMGET", k({collection, (*rows)[i].id}, "head"), "v", "type"},
                       [rows, i, remaining, failed, shared_done](const redisReply* h) {
                         if (!h) *failed = true;
                         if (h && h->type == REDIS_REPLY_ARRAY && h->elements == 2) {
                           auto v = to_count(reply_text(h->element[0]));
                           (*rows)[i].version = v.value_or(0);
                           auto type = reply_text(h->element[1]);
                           if (!type.empty()) (*rows)[i].type_uri = std::string(type);
                         }
                         if (--*remaining > 0) return;
                         if (*failed) return (*shared_done)(errc::unavailable);
                         (*shared_done)(std::move(*rows));
                       });
        }
      });
    });
  }

  void close() override {
    if (closed_.exchange(true)) return;
    // Let commands already sent finish (bounded by the command timeout), then stop.
    client_.stop(options_.command_timeout);
  }

 private:
  std::string doc_base(const doc_key& key) const {
    return options_.key_prefix + redis::doc_tag(key.collection, key.id);
  }
  std::string k(const doc_key& key, std::string_view what) const { return doc_base(key) + ":" + std::string(what); }
  // With min_replicas: `result` only once WAIT says that many replicas have every write so far on
  // this connection; otherwise the commit's outcome is unknown (unavailable: never acknowledged).
  // Then the ops the script did not publish go out: other instances' clients never see an op a
  // failover could still take back (if WAIT fails they stay unpublished; a catch-up may read them).
  void after_replicated(std::function<void(std::error_code)> done, std::error_code result, std::string channel,
                        std::vector<std::string> publish, std::string written_key) {
    if (options_.min_replicas == 0) return done(result);
    // In a cluster WAIT goes to the shard the write went to (routed by the written key).
    client_.send(
        {"WAIT", std::to_string(options_.min_replicas), std::to_string(options_.wait_timeout.count())},
        [this, done = std::move(done), result, channel = std::move(channel), publish = std::move(publish),
         written_key](const redisReply* r) {
          if (r && r->type == REDIS_REPLY_INTEGER && r->integer >= 0 &&
              static_cast<unsigned long long>(r->integer) >= options_.min_replicas) {
            for (const auto& message : publish) {
              client_.send({publish_command(), channel, message}, [](const redisReply*) {});
            }
            return done(result);
          }
          ++unreplicated_;
          unconfirmed_.insert(confirmation_scope(written_key));
          done(make_error_code(errc::unavailable));
        },
        written_key);
  }

  // Reads while a write may be on the master only: a catch-up would find that commit in the log
  // and acknowledge it. So the read waits until WAIT confirms every write so far on that connection
  // (in a cluster: the shard of `read_key`), or fails. On the store thread.
  void confirmed_then(const std::string& read_key, std::function<void(bool confirmed)> read) {
    const auto scope = confirmation_scope(read_key);
    if (!unconfirmed_.contains(scope)) return read(true);
    client_.send(
        {"WAIT", std::to_string(options_.min_replicas), std::to_string(options_.wait_timeout.count())},
        [this, scope, read = std::move(read)](const redisReply* r) {
          const bool ok = r && r->type == REDIS_REPLY_INTEGER && r->integer >= 0 &&
                          static_cast<unsigned long long>(r->integer) >= options_.min_replicas;
          if (ok) unconfirmed_.erase(scope);
          read(ok);
        },
        read_key);
  }

  // What one WAIT confirms: everything (one connection), or in a cluster the writes of a slot (a
  // WAIT on a shard confirms more, but the slot is what a read knows it needs).
  std::uint16_t confirmation_scope(const std::string& key) const {
    return client_.cluster() ? redis::key_slot(key) : std::uint16_t{0};
  }

  const char* publish_command() const { return client_.cluster() ? "SPUBLISH" : "PUBLISH"; }

  std::string index_key(const std::string& collection) const { return options_.key_prefix + "docs:" + collection; }

  template <class T>
  void post_result(handler<T> done, T value) {
    client_.post([done = std::move(done), value = std::move(value)]() mutable { done(std::move(value)); });
  }

  // Sends `argv` on the store thread and decodes the reply with `decode`.
  template <class T, class Decode>
  void run(std::vector<std::string> argv, handler<T> done, Decode decode) {
    if (closed_) return done(errc::closed);
    client_.post([this, argv = std::move(argv), done = std::move(done), decode]() mutable {
      const std::string read_key = argv.at(1);
      confirmed_then(read_key, [this, argv = std::move(argv), done = std::move(done), decode](bool confirmed) mutable {
        if (!confirmed) return done(errc::unavailable);
        client_.send(argv, reply_decoder(std::move(done), std::move(decode)));
      });
    });
  }
  // The same for a script call (`argv` starts with two placeholders).
  template <class T, class Decode>
  void run_script(redis::client::script_id script, std::vector<std::string> argv, handler<T> done, Decode decode) {
    if (closed_) return done(errc::closed);
    client_.post([this, script, argv = std::move(argv), done = std::move(done), decode]() mutable {
      const std::string read_key = argv.at(3);  // EVAL, script, key count, first key
      confirmed_then(read_key,
                     [this, script, argv = std::move(argv), done = std::move(done), decode](bool confirmed) mutable {
                       if (!confirmed) return done(errc::unavailable);
                       client_.send_script(script, std::move(argv), reply_decoder(std::move(done), std::move(decode)));
                     });
    });
  }
  template <class T, class Decode>
  static redis::client::reply_handler reply_decoder(handler<T> done, Decode decode) {
    return [done = std::move(done), decode = std::move(decode)](const redisReply* r) mutable {
      if (!r || r->type == REDIS_REPLY_ERROR) return done(errc::unavailable);
      done(decode(r));
    };
  }

  redis_options options_;
  std::string publisher_tag_;
  std::atomic<bool> closed_{false};
  std::atomic<std::uint64_t> unreplicated_{0};  ///< commits WAIT did not confirm on --redis-min-replicas
  /// Writes that may not be on the replicas yet, by confirmation_scope (store thread only).
  std::set<std::uint16_t> unconfirmed_;
  // Last: its thread stops (in close) before the members above go.
  redis::client client_;
};

}  // namespace

std::string redis_doc_tag(const doc_key& key) {
  return redis::doc_tag(key.collection, key.id);
}

std::string redis_publisher_tag(const redis_options& options) {
  return redis::publisher_tag(options.instance_id);
}

std::string redis_op_channel(const redis_options& options, const doc_key& key) {
  return redis::op_channel(options.key_prefix, key.collection, key.id);
}

namespace {

std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view authority,
                                                                     std::uint16_t default_port) {
  std::uint16_t port = default_port;
  auto colon = authority.rfind(':');
  if (colon != std::string_view::npos) {
    auto text = authority.substr(colon + 1);
    unsigned n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || ptr != text.data() + text.size() || n == 0 || n > 65535) return std::nullopt;
    port = static_cast<std::uint16_t>(n);
    authority = authority.substr(0, colon);
  }
  if (authority.empty() || authority.find(':') != std::string_view::npos) return std::nullopt;
  return std::pair{std::string(authority), port};
}

bool parse_db(std::string_view text, int& db) {
  int n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || ptr != text.data() + text.size() || n < 0 || n > 15) return false;
  db = n;
  return true;
}

/// `HOST:PORT[,HOST:PORT...]` into `out` (at least one, at most `max`), or false.
bool parse_host_list(std::string_view hosts, std::uint16_t default_port, std::size_t max,
                     std::vector<std::pair<std::string, std::uint16_t>>& out) {
  while (true) {
    auto comma = hosts.find(',');
    auto endpoint = parse_host_port(hosts.substr(0, comma), default_port);
    if (!endpoint || out.size() == max) return false;
    out.push_back(std::move(*endpoint));
    if (comma == std::string_view::npos) return true;
    hosts.remove_prefix(comma + 1);
  }
}

/// redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB] (sentinel port 26379 by default).
ot::result<redis_options> parse_sentinel_uri(std::string_view rest) {
  constexpr std::size_t max_sentinels = 32;
  redis_options out;
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return open_errc::invalid_option;
  auto path = rest.substr(slash + 1);
  auto db_slash = path.find('/');
  out.master_name = std::string(path.substr(0, db_slash));
  if (out.master_name.empty() || out.master_name.size() > 256) return open_errc::invalid_option;
  if (db_slash != std::string_view::npos && !parse_db(path.substr(db_slash + 1), out.db)) {
    return open_errc::invalid_option;
  }
  if (!parse_host_list(rest.substr(0, slash), 26379, max_sentinels, out.sentinels)) return open_errc::invalid_option;
  out.host = out.sentinels.front().first;
  out.port = out.sentinels.front().second;
  return out;
}

/// redis-cluster://HOST:PORT[,HOST:PORT...] (port 6379 by default): the nodes asked for the slot map.
ot::result<redis_options> parse_cluster_uri(std::string_view hosts) {
  constexpr std::size_t max_seeds = 64;
  redis_options out;
  if (hosts.ends_with('/')) hosts.remove_suffix(1);  // a cluster has database 0 only
  if (!parse_host_list(hosts, 6379, max_seeds, out.cluster_seeds)) return open_errc::invalid_option;
  out.host = out.cluster_seeds.front().first;
  out.port = out.cluster_seeds.front().second;
  return out;
}

}  // namespace

ot::result<redis_options> parse_redis_uri(std::string_view uri) {
  constexpr std::string_view cluster_scheme = "redis-cluster://";
  if (uri.starts_with(cluster_scheme)) return parse_cluster_uri(uri.substr(cluster_scheme.size()));
  constexpr std::string_view sentinel_scheme = "redis-sentinel://";
  if (uri.starts_with(sentinel_scheme)) return parse_sentinel_uri(uri.substr(sentinel_scheme.size()));
  constexpr std::string_view scheme = "redis://";
  if (!uri.starts_with(scheme)) return open_errc::invalid_option;
  auto rest = uri.substr(scheme.size());
  redis_options out;
  auto slash = rest.find('/');
  if (slash != std::string_view::npos && slash + 1 < rest.size() && !parse_db(rest.substr(slash + 1), out.db)) {
    return open_errc::invalid_option;
  }
  auto endpoint = parse_host_port(rest.substr(0, slash), 6379);
  if (!endpoint) return open_errc::invalid_option;
  std::tie(out.host, out.port) = std::move(*endpoint);
  return out;
}

std::unique_ptr<redis_store> open_redis_store(const redis_options& options) {
  return std::make_unique<redis_store_impl>(options);
}

}  // namespace otsync::store
