#include "http_routes.hpp"

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include "otsync/doc/snapshot.hpp"
#include "otsync/doc/store_error_info.hpp"
#include "otsync/protocol/message.hpp"
#include "otsync/store/redis_store.hpp"
#include "otsync/store/sqlite_store.hpp"

namespace otsync::server {
namespace http = boost::beast::http;
using nlohmann::json;

namespace {

constexpr std::size_t max_list_limit = 1000;
constexpr std::uint64_t max_op_range = 10000;

http_response make_response(const http_request& request, http::status status, std::string body,
                            std::string_view content_type = "application/json") {
  http_response res{status, request.version()};
  res.set(http::field::server, "otsyncd");
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(request.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

http_response json_response(const http_request& request, http::status status, const json& body) {
  return make_response(request, status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

http_response error_response(const http_request& request, http::status status, std::string_view code,
                             std::string_view message) {
  return json_response(request, status, json{{"error", {{"code", code}, {"message", message}}}});
}

// Splits "/a/b/c?x=1" into decoded path segments and the query string.
bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      unsigned value = 0;
      auto [ptr, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, value, 16);
      if (ec != std::errc{} || ptr != in.data() + i + 3) return false;
      out += static_cast<char>(value);
      i += 2;
    } else {
      out += in[i];
    }
  }
  return true;
}

struct target {
  std::vector<std::string> segments;
  std::vector<std::pair<std::string, std::string>> query;
};

std::optional<target> parse_target(std::string_view raw) {
  target t;
  auto question = raw.find('?');
  std::string_view path = raw.substr(0, question);
  std::string_view query = question == std::string_view::npos ? std::string_view{} : raw.substr(question + 1);
  std::size_t start = 1;
  if (path.empty() || path[0] != '/') return std::nullopt;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    auto piece = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!piece.empty()) {
      std::string decoded;
      if (!percent_decode(piece, decoded)) return std::nullopt;
      t.segments.push_back(std::move(decoded));
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    std::string key;
    std::string value;
    if (!percent_decode(pair.substr(0, eq), key)) return std::nullopt;
    if (eq != std::string_view::npos && !percent_decode(pair.substr(eq + 1), value)) return std::nullopt;
    t.query.emplace_back(std::move(key), std::move(value));
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return t;
}

const std::string* query_value(const target& t, std::string_view key) {
  for (const auto& [k, v] : t.query) {
    if (k == key) return &v;
  }
  return nullptr;
}

// A non-negative integer query parameter; nullopt when absent, error when malformed.
std::optional<std::optional<std::uint64_t>> count_param(const target& t, std::string_view key) {
  const auto* value = query_value(t, key);
  if (!value) return std::optional<std::uint64_t>{};
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
  if (ec != std::errc{} || ptr != value->data() + value->size() || value->empty()) return std::nullopt;
  return std::optional<std::uint64_t>{n};
}

json document_json(const std::string& collection, const std::string& id, const doc::snapshot& snap) {
  json out = {{"collection", collection}, {"id", id}, {"v", snap.version}};
  if (snap.type_uri) {
    out["type"] = *snap.type_uri;
    out["data"] = snap.data;
  } else {
    out["type"] = nullptr;
  }
  return out;
}

json op_json(const doc::op_record& op) {
  json out = {{"v", op.version}, {"src", op.src}, {"seq", op.seq}, {"ts", op.timestamp_ms}};
  protocol::write_op_body(out, op.body);
  return out;
}

void store_error(const http_request& request, std::error_code error, std::function<void(http_response)>& respond) {
  auto info = doc::store_error_info(error);
  auto status =
      info.code == "ERR_DATABASE_CORRUPT" ? http::status::internal_server_error : http::status::service_unavailable;
  respond(error_response(request, status, info.code, info.message));
}

}  // namespace

void handle_http(server_context& context, const http_request& request, std::function<void(http_response)> respond) {
  auto parsed = parse_target(request.target());
  if (!parsed) {
    respond(error_response(request, http::status::bad_request, "ERR_BAD_REQUEST", "Malformed request target"));
    return;
  }
  const auto& segments = parsed->segments;
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    auto res =
        error_response(request, http::status::method_not_allowed, "ERR_METHOD_NOT_ALLOWED", "Only GET is supported");
    res.set(http::field::allow, "GET, HEAD");
    respond(std::move(res));
    return;
  }
  if (segments.size() == 1 && segments[0] == "healthz") {
    respond(json_response(request, http::status::ok, json{{"status", "ok"}}));
    return;
  }
  if (segments.size() == 1 && segments[0] == "readyz") {
    // Not ready while starting, while draining, or while a shared store is unreachable.
    const auto* redis = dynamic_cast<const store::redis_store*>(context.storage);
    bool store_up = (!redis || redis->connected()) && (!context.feed || context.feed->connected());
    bool ready = context.ready && !context.draining && store_up;
    std::string status = ready              ? "ready"
                         : context.draining ? "draining"
                         : !context.ready   ? "starting"
                                            : "store unavailable";
    respond(
        json_response(request, ready ? http::status::ok : http::status::service_unavailable, json{{"status", status}}));
    return;
  }
  if (segments.size() == 1 && segments[0] == "metrics") {
    if (const auto* sqlite = dynamic_cast<const store::sqlite_store*>(context.storage)) {
      auto counters = sqlite->stats();
      context.stats->set_store_counters(counters.transactions, counters.commits, counters.failed_batches);
    }
    if (const auto* redis = dynamic_cast<const store::redis_store*>(context.storage)) {
      bool feed_up = context.feed && context.feed->connected();
      context.stats->set_redis_state(redis->connected(), redis->stats(), feed_up,
                                     context.feed ? context.feed->stats() : pubsub::feed_stats{});
    }
    context.stats->set_partial_bytes(context.partial_bytes.load(std::memory_order_relaxed));
    context.stats->set_resident_document_bytes(context.documents->resident_bytes());
    respond(make_response(request, http::status::ok, context.stats->render(context.documents->open_documents()),
                          "text/plain; version=0.0.4; charset=utf-8"));
    return;
  }
  if (segments.size() >= 3 && segments[0] == "api" && segments[1] == "v1" && segments[2] == "docs") {
    if (segments.size() == 4) {
      // GET /api/v1/docs/{collection}?after=ID&limit=N
      const auto* after = query_value(*parsed, "after");
      auto limit = count_param(*parsed, "limit");
      if (!limit || (*limit && (**limit == 0 || **limit > max_list_limit))) {
        respond(error_response(request, http::status::bad_request, "ERR_BAD_REQUEST",
                               "limit must be an integer from 1 to 1000"));
        return;
      }
      auto collection = segments[3];
      context.storage->list_documents(
          collection, after ? *after : std::string{}, limit->value_or(100),
          [request, respond = std::move(respond),
           collection](ot::result<std::vector<store::document_summary>> docs) mutable {
            if (!docs) return store_error(request, docs.error(), respond);
            json list = json::array();
            for (const auto& d : *docs) {
              list.push_back({{"id", d.id}, {"v", d.version}, {"type", d.type_uri ? json(*d.type_uri) : json()}});
            }
            respond(json_response(request, http::status::ok, json{{"collection", collection}, {"documents", list}}));
          });
      return;
    }
    if (segments.size() == 5 || (segments.size() == 6 && segments[5] == "ops")) {
      store::doc_key key{segments[3], segments[4]};
      if (segments.size() == 6) {
        // GET /api/v1/docs/{collection}/{id}/ops?from=A&to=B
        auto from = count_param(*parsed, "from");
        auto to = count_param(*parsed, "to");
        if (!from || !to || (*to && **to < from->value_or(0))) {
          respond(error_response(request, http::status::bad_request, "ERR_BAD_REQUEST",
                                 "from and to must be integers with from <= to"));
          return;
        }
        std::uint64_t first = from->value_or(0);
        std::uint64_t last = to->value_or(first + max_op_range);
        if (last - first > max_op_range) last = first + max_op_range;
        context.storage->load_ops(
            key, first, last,
            [request, respond = std::move(respond)](ot::result<std::vector<doc::op_record>> ops) mutable {
              if (!ops) return store_error(request, ops.error(), respond);
              json list = json::array();
              for (const auto& op : *ops) list.push_back(op_json(op));
              respond(json_response(request, http::status::ok, json{{"ops", list}}));
            });
        return;
      }
      // GET /api/v1/docs/{collection}/{id}[?v=N]
      auto version = count_param(*parsed, "v");
      if (!version) {
        respond(error_response(request, http::status::bad_request, "ERR_BAD_REQUEST", "v must be an integer >= 0"));
        return;
      }
      if (!*version) {
        context.documents->get(key)->fetch(
            std::nullopt, [request, respond = std::move(respond), key](doc::read_result result) mutable {
              if (result.error) {
                respond(error_response(request, http::status::service_unavailable, result.error->code,
                                       result.error->message));
                return;
              }
              respond(json_response(request, http::status::ok, document_json(key.collection, key.id, *result.snap)));
            });
        return;
      }
      std::uint64_t wanted = **version;
      context.storage->load(
          key, wanted,
          [request, respond = std::move(respond), key, wanted](ot::result<store::loaded_document> loaded) mutable {
            if (!loaded) return store_error(request, loaded.error(), respond);
            if (loaded->version_reached() < wanted) {
              respond(error_response(request, http::status::not_found, "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT",
                                     "Requested version exceeds latest snapshot version"));
              return;
            }
            auto snap = doc::replay(std::move(loaded->base), loaded->ops);
            if (!snap) {
              respond(error_response(request, http::status::internal_server_error, "ERR_DATABASE_CORRUPT",
                                     snap.error().message()));
              return;
            }
            respond(json_response(request, http::status::ok, document_json(key.collection, key.id, *snap)));
          });
      return;
    }
  }
  respond(error_response(request, http::status::not_found, "ERR_NOT_FOUND", "No such endpoint"));
}

}  // namespace otsync::server
