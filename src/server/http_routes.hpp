// The plain-HTTP endpoints: /healthz, /readyz, /metrics and the JSON REST
// API (documents, a document now or at ?v=N, op ranges). Errors are an HTTP
// status with a JSON body `{"error": {"code", "message"}}`.
//
// Thread safety: `handle` may be called from any thread; `respond` may run
// on a store thread (the session posts it back to its executor).
#pragma once

#include <functional>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "context.hpp"

namespace otsync::server {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

void handle_http(server_context& context, const http_request& request, std::function<void(http_response)> respond);

}  // namespace otsync::server
