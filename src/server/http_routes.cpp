#include "http_routes.hpp"

#include "http_target.hpp"

#include <chrono>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include "authenticate.hpp"
#include "otsync/doc/service.hpp"
#include "otsync/oplog/error.hpp"
#include "otsync/oplog/snapshot.hpp"
#include "otsync/protocol/errors.hpp"
#include "otsync/protocol/message.hpp"
#include "static_site.hpp"

namespace otsync::server {
namespace http = boost::beast::http;
using nlohmann::json;

namespace {

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

json document_json(const std::string& collection, const std::string& id, const oplog::snapshot& snap) {
  json out = {{"collection", collection}, {"id", id}, {"v", snap.version}};
  if (snap.type_uri) {
    out["type"] = *snap.type_uri;
    out["data"] = snap.data;
  } else {
    out["type"] = nullptr;
  }
  return out;
}

// The REST API shows an op's author as other clients see it: its alias, never the real id.
json op_json(const oplog::op_record& op, const auth::identity_keys* identity) {
  json out = {{"v", op.version},
              {"src", identity ? identity->alias(op.src) : op.src},
              {"seq", op.seq},
              {"ts", op.timestamp_ms}};
  if (!op.author.empty()) out["author"] = op.author;  // "who wrote this": the token's subject
  protocol::write_op_body(out, op.body);
  return out;
}

// A failed read of the past (protocol::to_read_error_info). A store's refusal of the
// request itself is the client's error (400); a version beyond the head is
// 404; an outage is 503, undecodable stored data (or stored ops that do not
// replay) 500.
void read_error(const http_request& request, std::error_code error, std::function<void(http_response)>& respond) {
  if (error == store::errc::invalid_argument) {
    respond(error_response(request, http::status::bad_request, "ERR_BAD_REQUEST",
                           "The document store refused the request: " + error.message()));
    return;
  }
  auto info = protocol::to_read_error_info(error);
  auto status = error == oplog::errc::version_from_the_future ? http::status::not_found
                : info.code == "ERR_DATABASE_CORRUPT"         ? http::status::internal_server_error
                                                              : http::status::service_unavailable;
  respond(error_response(request, status, info.code, info.message));
}

// Compares without stopping at the first difference (a metrics token is a secret).
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char differ = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    differ = static_cast<unsigned char>(differ | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
  }
  return differ == 0;
}

http_response unauthorized(const http_request& request, std::string_view code, std::string_view message) {
  auto res = error_response(request, http::status::unauthorized, code, message);
  res.set(http::field::www_authenticate, "Bearer");
  return res;
}

// A document list under a token: the store is read page after page until
// `limit` documents the caller may read are found, so a reply never depends
// on how many unreadable documents lie between them (neither their count nor
// their names can be learnt from it) and a page is never empty while more
// readable ones follow. At most `max_pages` store reads per request; past
// them the reply holds what was found and `"incomplete": true` (continue
// after its last id, or narrow the range).
struct list_scan {
  doc::document_service* service;
  http_request request;
  std::function<void(http_response)> respond;
  std::string collection;
  std::string after;  // the last id read from the store
  std::size_t limit;
  auth::access_rules access;
  json documents = json::array();
  std::size_t pages = 0;
  static constexpr std::size_t max_pages = 20;
};

void scan_documents(const std::shared_ptr<list_scan>& scan) {
  // `limit` rows first (all of them readable in the common case), then the largest pages.
  const std::size_t page = scan->pages == 0 ? scan->limit : http_api::max_list_limit;
  scan->service->list_documents(
      scan->collection, scan->after, page, [scan, page](ot::result<std::vector<store::document_summary>> docs) {
        if (!docs) return read_error(scan->request, docs.error(), scan->respond);
        for (const auto& d : *docs) {
          scan->after = d.id;
          if (!scan->access.may_read(scan->collection, d.id)) continue;
          scan->documents.push_back(
              {{"id", d.id}, {"v", d.version}, {"type", d.type_uri ? json(*d.type_uri) : json()}});
          if (scan->documents.size() == scan->limit) break;
        }
        const bool done = scan->documents.size() == scan->limit || docs->size() < page;
        if (!done && ++scan->pages < list_scan::max_pages) return scan_documents(scan);
        json body{{"collection", scan->collection}, {"documents", std::move(scan->documents)}};
        if (!done) body["incomplete"] = true;
        scan->respond(json_response(scan->request, http::status::ok, body));
      });
}

// The editor page and its files (static_site): only names the directory held at startup.
void serve_editor(server_context& context, const http_request& request, const http_api::route& route,
                  const std::function<void(http_response)>& respond) {
  if (context.options.no_editor) {
    respond(error_response(request, http::status::not_found, "ERR_NOT_FOUND", "The editor page is off (--no-editor)"));
    return;
  }
  if (!context.editor) {
    respond(error_response(request, http::status::service_unavailable, "ERR_EDITOR_UNAVAILABLE",
                           context.editor_unavailable));
    return;
  }
  if (route.kind == http_api::route_kind::editor_config) {
    const auto& url = context.options.editor_token_url;
    json config{{"tokenUrl", url.empty() ? json() : json(url)}, {"auth", context.verifier ? "jwt" : "none"}};
    respond(json_response(request, http::status::ok, config));
    return;
  }
  const std::string_view name =
      route.kind == http_api::route_kind::editor_index ? std::string_view("index.html") : std::string_view(route.id);
  const auto* file = context.editor->find(name);
  if (!file) {
    respond(error_response(request, http::status::not_found, "ERR_NOT_FOUND", "No such file"));
    return;
  }
  auto res = make_response(request, http::status::ok, file->content, file->content_type);
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  if (name == "index.html") {
    // Scripts and styles from this origin only (CodeMirror adds inline styles); connections to
    // this origin's WebSocket and to a token URL the operator may have put elsewhere.
    res.set("Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self' ws: wss: http: https:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    res.set("X-Frame-Options", "DENY");
  }
  respond(std::move(res));
}

}  // namespace

void handle_http(server_context& context, const http_request& request, std::function<void(http_response)> respond) {
  auto parsed = http_api::parse_target(request.target());
  if (!parsed) {
    respond(error_response(request, http::status::bad_request, "ERR_BAD_REQUEST", "Malformed request target"));
    return;
  }
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    auto res =
        error_response(request, http::status::method_not_allowed, "ERR_METHOD_NOT_ALLOWED", "Only GET is supported");
    res.set(http::field::allow, "GET, HEAD");
    respond(std::move(res));
    return;
  }
  auto route = http_api::resolve_route(*parsed);
  // Ids longer than --max-id-bytes name no document (WebSocket clients cannot create one).
  const auto max_id = context.options.message_limits.max_id_bytes;
  if (route.collection.size() > max_id || route.id.size() > max_id) {
    respond(error_response(request, http::status::bad_request, "ERR_BAD_REQUEST",
                           "collection and id are at most " + std::to_string(max_id) + " bytes (--max-id-bytes)"));
    return;
  }
  // The document routes answer under the same rules as WebSocket clients; health, readiness and
  // metrics stay reachable for operators (metrics behind --metrics-token-file when set).
  std::optional<caller> who;
  const bool document_route =
      route.kind == http_api::route_kind::list_documents || route.kind == http_api::route_kind::document ||
      route.kind == http_api::route_kind::document_at || route.kind == http_api::route_kind::ops;
  if (document_route) {
    auto checked = authenticate(context.verifier, request, false, std::chrono::system_clock::now());
    if (auto* refused = std::get_if<auth_refusal>(&checked)) {
      if (context.stats) context.stats->auth_failed(refused->reason);
      respond(unauthorized(request, refused->code, refused->message));
      return;
    }
    who = std::move(std::get<caller>(checked));
    if (route.kind != http_api::route_kind::list_documents && !who->access.may_read(route.collection, route.id)) {
      auto error = protocol::errors::forbidden("read", route.collection, route.id);
      respond(error_response(request, http::status::forbidden, error.code, error.message));
      return;
    }
  }
  if (route.kind == http_api::route_kind::metrics && !context.metrics_token.empty()) {
    auto it = request.find(http::field::authorization);
    const std::string expected = "Bearer " + context.metrics_token;
    if (it == request.end() || !same_secret(it->value(), expected)) {
      if (context.stats) context.stats->auth_failed("metrics");
      respond(unauthorized(request, "ERR_UNAUTHORIZED", "/metrics needs the metrics token (--metrics-token-file)"));
      return;
    }
  }
  switch (route.kind) {
    case http_api::route_kind::healthz:
      respond(json_response(request, http::status::ok, json{{"status", "ok"}}));
      return;
    case http_api::route_kind::readyz: {
      // Not ready while starting, while draining, or while a shared store is unreachable.
      bool store_up = context.storage->health().connected && (!context.feed || context.feed->connected());
      bool ready = context.ready && !context.draining && store_up;
      std::string status = ready              ? "ready"
                           : context.draining ? "draining"
                           : !context.ready   ? "starting"
                                              : "store unavailable";
      respond(json_response(request, ready ? http::status::ok : http::status::service_unavailable,
                            json{{"status", status}}));
      return;
    }
    case http_api::route_kind::metrics: {
      const auto feed_health = context.feed ? std::optional(context.feed->health()) : std::nullopt;
      const auto bus_health = context.presence_bus ? std::optional(context.presence_bus->health()) : std::nullopt;
      context.stats->set_backend_health(context.storage->health(), feed_health ? &*feed_health : nullptr,
                                        bus_health ? &*bus_health : nullptr);
      context.stats->set_partial_bytes(context.partial_bytes.load(std::memory_order_relaxed));
      context.stats->set_resident_document_bytes(context.documents->resident_bytes());
      respond(make_response(request, http::status::ok, context.stats->render(context.documents->open_documents()),
                            "text/plain; version=0.0.4; charset=utf-8"));
      return;
    }
    case http_api::route_kind::list_documents: {
      auto scan = std::make_shared<list_scan>(list_scan{context.service, request, std::move(respond), route.collection,
                                                        route.after, route.limit, std::move(who->access)});
      scan_documents(scan);
      return;
    }
    case http_api::route_kind::ops: {
      store::doc_key key{route.collection, route.id};
      context.service->ops(key, route.from, route.to,
                           [request, respond = std::move(respond),
                            identity = context.identity](ot::result<std::vector<oplog::op_record>> ops) mutable {
                             if (!ops) return read_error(request, ops.error(), respond);
                             json list = json::array();
                             for (const auto& op : *ops) list.push_back(op_json(op, identity));
                             respond(json_response(request, http::status::ok, json{{"ops", list}}));
                           });
      return;
    }
    case http_api::route_kind::document: {
      store::doc_key key{route.collection, route.id};
      context.service->fetch(
          key, std::nullopt,
          [request, respond = std::move(respond), key](doc::read_result result) mutable {
            if (result.error) {
              // Stored data that does not decode or replay is the server's fault (500), as on the
              // other routes; anything else (a busy document, the memory budget, a store outage) is
              // worth a retry (503).
              const auto status = result.error->code == "ERR_DATABASE_CORRUPT" ? http::status::internal_server_error
                                                                               : http::status::service_unavailable;
              respond(error_response(request, status, result.error->code, result.error->message));
              return;
            }
            respond(json_response(request, http::status::ok, document_json(key.collection, key.id, *result.snap)));
          },
          std::chrono::steady_clock::now());
      return;
    }
    case http_api::route_kind::document_at: {
      store::doc_key key{route.collection, route.id};
      context.service->snapshot_at(
          key, route.version, [request, respond = std::move(respond), key](ot::result<oplog::snapshot> snap) mutable {
            if (!snap) return read_error(request, snap.error(), respond);
            respond(json_response(request, http::status::ok, document_json(key.collection, key.id, *snap)));
          });
      return;
    }
    case http_api::route_kind::editor_index:
    case http_api::route_kind::editor_asset:
    case http_api::route_kind::editor_config:
      serve_editor(context, request, route, respond);
      return;
    case http_api::route_kind::bad_request:
      respond(error_response(request, http::status::bad_request, "ERR_BAD_REQUEST", route.message));
      return;
    case http_api::route_kind::not_found:
      break;
  }
  respond(error_response(request, http::status::not_found, "ERR_NOT_FOUND", "No such endpoint"));
}

}  // namespace otsync::server
