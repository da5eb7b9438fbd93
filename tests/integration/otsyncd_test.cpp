// otsyncd end to end: the real binary on a random loopback port with a temp
// data directory, driven through Beast WebSocket and HTTP clients, stopped by
// PID. Every wait is bounded.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <sqlite3.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "../store/redis_server.hpp"
#include "otsync/auth/identity.hpp"
#include "otsync/ot/rope.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/op_json.hpp"
#include "support/process.hpp"

extern char** environ;

namespace otsync {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using asio::ip::tcp;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* otsyncd_path = OTSYNCD_PATH;
const std::string text_uri = "http://sharejs.org/types/text-unicode";
// Every daemon of these tests runs with this identity secret (--identity-secret-file).
const std::string test_identity_secret = "integration-test-identity-secret";
const auth::identity_keys& test_identity() {
  static const auth::identity_keys keys(test_identity_secret);
  return keys;
}

// ---------------------------------------------------------------------------
// Processes

using test::read_file;
using test::wait_exit;

std::filesystem::path make_temp_dir() {
  return test::make_temp_dir("otsyncd-test");
}

// Starts otsyncd with `args`, stdout and stderr appended to `output`, `env` added to the environment.
pid_t spawn(const std::vector<std::string>& args, const std::filesystem::path& output,
            const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv{otsyncd_path};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::spawn_process(argv, {output, {}, env, true});
}

struct command_result {
  int exit_code = -1;
  std::string output;
};

command_result run_command(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  auto dir = make_temp_dir();
  auto out = dir / "output";
  pid_t pid = spawn(args, out, env);
  auto status = wait_exit(pid, 20s);
  if (!status) {
    kill(pid, SIGKILL);
    wait_exit(pid, 5s);
  }
  command_result r;
  if (status && WIFEXITED(*status)) r.exit_code = WEXITSTATUS(*status);
  r.output = read_file(out);
  std::filesystem::remove_all(dir);
  return r;
}

// One otsyncd process.
class daemon_process {
 public:
  daemon_process(std::filesystem::path dir, std::vector<std::string> extra_args,
                 std::map<std::string, std::string> env = {}, bool with_listen = true)
      : dir_(std::move(dir)), args_(std::move(extra_args)), env_(std::move(env)), with_listen_(with_listen) {
    start();
  }
  ~daemon_process() {
    if (pid_ > 0) stop(SIGKILL, 5s);
  }
  daemon_process(const daemon_process&) = delete;
  daemon_process& operator=(const daemon_process&) = delete;

  void start() {
    auto port_file = dir_ / "port";
    std::filesystem::remove(port_file);
    std::vector<std::string> args;
    if (with_listen_) args = {"--listen", "127.0.0.1:0"};
    // A known identity secret, so the test can tell whose alias an op shows.
    const auto secret_file = dir_ / "test-identity-secret";
    std::ofstream(secret_file) << test_identity_secret;
    std::vector<std::string> common = {"--port-file", port_file.string(),       "--data-dir",
                                       dir_.string(), "--identity-secret-file", secret_file.string()};
    bool has_store = false;
    bool has_log_level = false;
    for (const auto& a : args_) {
      has_store = has_store || a == "--store";
      has_log_level = has_log_level || a == "--log-level";
    }
    if (!has_log_level) {
      common.push_back("--log-level");
      common.push_back("warn");
    }
    args.insert(args.end(), common.begin(), common.end());
    if (!has_store) {
      args.push_back("--store");
      args.push_back("sqlite:" + (dir_ / "db").string());
    }
    args.insert(args.end(), args_.begin(), args_.end());
    pid_ = spawn(args, dir_ / "log", env_);
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(port_file);
      unsigned port = 0;
      if (in >> port && port > 0) {
        port_ = static_cast<std::uint16_t>(port);
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("otsyncd exited during startup: " + read_file(dir_ / "log"));
      }
      std::this_thread::sleep_for(10ms);
    }
    throw std::runtime_error("otsyncd did not write its port file: " + read_file(dir_ / "log"));
  }

  /// Sends `signal`; SIGKILL after `timeout`. Returns the wait status.
  std::optional<int> stop(int signal, std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    kill(pid_, signal);
    auto status = wait_exit(pid_, timeout);
    if (!status) {
      kill(pid_, SIGKILL);
      wait_exit(pid_, 5s);
    }
    pid_ = -1;
    return status;
  }

  [[nodiscard]] pid_t pid() const { return pid_; }
  void forget_pid() { pid_ = -1; }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string log() const { return read_file(dir_ / "log"); }

 private:
  std::filesystem::path dir_;
  std::vector<std::string> args_;
  std::map<std::string, std::string> env_;
  bool with_listen_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

// ---------------------------------------------------------------------------
// Clients: Beast's async operations run on a private io_context for a
// bounded time, so nothing can hang.

template <class Stream, class Start>
beast::error_code run_bounded(asio::io_context& io, Stream& stream, Start start, std::chrono::milliseconds timeout) {
  std::optional<beast::error_code> result;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  io.restart();
  io.run_for(timeout);
  if (!result) {
    beast::get_lowest_layer(stream).cancel();
    io.restart();
    io.run_for(1s);
    return asio::error::timed_out;
  }
  return *result;
}

class ws_client {
 public:
  explicit ws_client(std::uint16_t port, int receive_buffer = 0) : ws_(io_) {
    auto& socket = beast::get_lowest_layer(ws_).socket();
    socket.open(tcp::v4());
    if (receive_buffer > 0) socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    auto ec = run_bounded(
        io_, ws_, [&](auto done) { beast::get_lowest_layer(ws_).socket().async_connect(endpoint, done); }, 5s);
    if (ec) throw std::runtime_error("connect: " + ec.message());
    // Beast masks and writes a client frame in 4 KB pieces: without this,
    // Nagle and delayed ACKs cost 40 ms per larger frame.
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true));
    ec = run_bounded(
        io_, ws_, [&](auto done) { ws_.async_handshake("127.0.0.1:" + std::to_string(port), "/ws", done); }, 5s);
    if (ec) throw std::runtime_error("websocket handshake: " + ec.message());
  }

  beast::error_code send(const std::string& text) {
    ws_.text(true);
    return run_bounded(
        io_, ws_, [&](auto done) { ws_.async_write(asio::buffer(text), done); }, 10s);
  }
  beast::error_code send(const json& message) { return send(message.dump()); }
  beast::error_code send_binary(const std::string& bytes) {
    ws_.binary(true);
    return run_bounded(
        io_, ws_, [&](auto done) { ws_.async_write(asio::buffer(bytes), done); }, 10s);
  }

  /// The next frame, or nullopt (see `error()` and `close_code()`).
  std::optional<json> read(std::chrono::milliseconds timeout = 10s) {
    buffer_.clear();
    error_ = run_bounded(
        io_, ws_, [&](auto done) { ws_.async_read(buffer_, done); }, timeout);
    if (error_) return std::nullopt;
    return json::parse(beast::buffers_to_string(buffer_.data()), nullptr, false);
  }

  /// Reads until an op-less frame with `a` == action arrives (skipping broadcasts).
  std::optional<json> read_until(const std::function<bool(const json&)>& wanted, int max_frames = 1000) {
    for (int i = 0; i < max_frames; ++i) {
      auto m = read();
      if (!m) return std::nullopt;
      if (wanted(*m)) return m;
    }
    return std::nullopt;
  }

  /// Reads until the connection closes (bounded); the close code, or -1.
  int wait_close(int max_frames = 100000, std::chrono::milliseconds per_frame = 10s) {
    for (int i = 0; i < max_frames; ++i) {
      if (!read(per_frame)) {
        // A close frame arrived (error::closed), or arrived and the teardown
        // after it failed (the server may reset the TCP connection once its
        // close frame is out): either way, the code the server sent.
        if (error_ == websocket::error::closed || ws_.reason().code != websocket::close_code::none) {
          return ws_.reason().code;
        }
        return -1;
      }
    }
    return -1;
  }

  json request(const json& message) {
    EXPECT_FALSE(send(message));
    auto reply = read();
    EXPECT_TRUE(reply.has_value()) << error_.message();
    return reply.value_or(json());
  }

  std::string handshake(const std::optional<std::string>& id = std::nullopt) {
    json hs = {{"a", "hs"}, {"protocol", 1}, {"protocolMinor", 2}};
    hs["id"] = id ? json(*id) : json(nullptr);
    auto reply = request(hs);
    EXPECT_EQ(reply["a"], "hs");
    return reply.value("id", std::string());
  }

  [[nodiscard]] beast::error_code error() const { return error_; }
  void set_receive_buffer(int bytes) {
    beast::get_lowest_layer(ws_).socket().set_option(asio::socket_base::receive_buffer_size(bytes));
  }

 private:
  asio::io_context io_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  beast::error_code error_;
};

struct http_result {
  unsigned status = 0;
  std::string body;
  std::string content_type;
  [[nodiscard]] json as_json() const { return json::parse(body, nullptr, false); }
};

// An HTTP/1.1 connection (keep-alive).
class http_client {
 public:
  explicit http_client(std::uint16_t port) : stream_(io_), port_(port) {
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    auto ec = run_bounded(
        io_, stream_, [&](auto done) { stream_.async_connect(endpoint, done); }, 5s);
    if (ec) throw std::runtime_error("connect: " + ec.message());
  }

  std::optional<http_result> get(const std::string& target, http::verb method = http::verb::get) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port_));
    req.keep_alive(true);
    error_ = run_bounded(
        io_, stream_, [&](auto done) { http::async_write(stream_, req, done); }, 5s);
    if (error_) return std::nullopt;
    http::response<http::string_body> res;
    buffer_.clear();
    error_ = run_bounded(
        io_, stream_, [&](auto done) { http::async_read(stream_, buffer_, res, done); }, 10s);
    if (error_) return std::nullopt;
    return http_result{res.result_int(), res.body(), std::string(res[http::field::content_type])};
  }

 private:
  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::uint16_t port_;

 public:
  beast::error_code error_;
};

http_result http_get(std::uint16_t port, const std::string& target, http::verb method = http::verb::get) {
  http_client client(port);
  auto r = client.get(target, method);
  if (!r) throw std::runtime_error("HTTP request failed: " + target);
  return *r;
}

// The value of an unlabelled Prometheus sample, or nullopt.
std::optional<double> metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return std::nullopt;
}

// tests/integration/check_metrics.py over /metrics scrapes taken in that order:
// the text format parsed strictly (prometheus_client), OpenMetrics family
// collisions, counters named *_total and never going down. Exit code 0 when
// they follow the conventions, 77 without python3 or its prometheus_client.
command_result check_metrics(const std::filesystem::path& dir, const std::vector<std::string>& scrapes) {
  command_result r;
  if (std::string(OTSYNC_PYTHON3_PATH).empty()) {
    r.exit_code = 77;
    r.output = "python3 not found when configuring";
    return r;
  }
  std::vector<std::string> args{OTSYNC_PYTHON3_PATH, OTSYNC_TESTS_DIR "/integration/check_metrics.py"};
  for (std::size_t i = 0; i < scrapes.size(); ++i) {
    auto path = dir / ("metrics-" + std::to_string(i) + ".txt");
    std::ofstream(path, std::ios::binary) << scrapes[i];
    args.push_back(path.string());
  }
  auto out = dir / "check_metrics.out";
  pid_t pid = test::spawn_process(args, {out, {}, {}, false});
  auto status = wait_exit(pid, 30s);
  if (!status) {
    kill(pid, SIGKILL);
    wait_exit(pid, 5s);
  }
  if (status && WIFEXITED(*status)) r.exit_code = WEXITSTATUS(*status);
  r.output = read_file(out);
  return r;
}

json op_message(const std::string& d, std::optional<std::uint64_t> v, std::uint64_t seq, const char* key, json body) {
  json m = {{"a", "op"}, {"c", "docs"}, {"d", d}, {"seq", seq}, {"x", json::object()}};
  m["v"] = v ? json(*v) : json(nullptr);
  m[key] = std::move(body);
  return m;
}

json ack(const std::string& src, std::uint64_t seq, std::uint64_t v, const std::string& d) {
  return {{"src", src}, {"seq", seq}, {"v", v}, {"a", "op"}, {"c", "docs"}, {"d", d}};
}

bool is_ack(const json& m) {
  return m.value("a", "") == "op" && !m.contains("op") && !m.contains("create") && !m.contains("del");
}

// ---------------------------------------------------------------------------

class OtsyncdTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override {
    for (auto& d : daemons_) {
      if (HasFailure()) std::cerr << "otsyncd log:\n" << d->log() << '\n';
    }
    daemons_.clear();
    std::filesystem::remove_all(dir_);
  }

  daemon_process& start(std::vector<std::string> args = {}, std::map<std::string, std::string> env = {},
                        bool with_listen = true) {
    daemons_.push_back(std::make_unique<daemon_process>(dir_, std::move(args), std::move(env), with_listen));
    return *daemons_.back();
  }

  std::filesystem::path dir_;
  std::vector<std::unique_ptr<daemon_process>> daemons_;
};

TEST_F(OtsyncdTest, Handshake) {
  auto& d = start();
  ws_client c(d.port());
  auto reply = c.request(json::parse(R"({"a":"hs","id":null,"protocol":1,"protocolMinor":2})"));
  EXPECT_EQ(reply["a"], "hs");
  EXPECT_EQ(reply["protocol"], 1);
  EXPECT_EQ(reply["protocolMinor"], 2);
  EXPECT_EQ(reply["type"], "http://sharejs.org/types/JSONv0");
  ASSERT_TRUE(reply["id"].is_string());
  const auto given = reply["id"].get<std::string>();
  EXPECT_TRUE(test_identity().is_minted(given));
  // A made-up previous id is not adopted; one this server (or one sharing its secret) minted is.
  EXPECT_EQ(c.handshake("my-old-id"), given);
  const auto previous = test_identity().mint_id();
  EXPECT_EQ(c.handshake(previous), previous);
  EXPECT_EQ(c.request(json::parse(R"({"a":"pp"})")), json::parse(R"({"a":"pp"})"));
}

TEST_F(OtsyncdTest, CreateSubscribeSubmitBroadcast) {
  auto& d = start();
  ws_client a(d.port());
  ws_client b(d.port());
  const auto src_a = a.handshake();
  b.handshake();
  EXPECT_EQ(a.request(op_message("d1", std::nullopt, 1, "create", {{"type", "text-unicode"}, {"data", "héllo"}})),
            ack(src_a, 1, 0, "d1"));
  EXPECT_EQ(b.request(json::parse(R"({"a":"s","c":"docs","d":"d1","v":null})")),
            json::parse(R"({"a":"s","c":"docs","d":"d1","data":{"v":1,"data":"héllo",
                "type":"http://sharejs.org/types/text-unicode"}})"));
  EXPECT_EQ(a.request(json::parse(R"({"a":"s","c":"docs","d":"d1","v":1})")),
            json::parse(R"({"a":"s","c":"docs","d":"d1"})"));
  EXPECT_EQ(a.request(op_message("d1", 1, 2, "op", json::parse(R"([5," 😀"])"))), ack(src_a, 2, 1, "d1"));
  auto got = b.read();
  ASSERT_TRUE(got);
  json expected = json::parse(R"({"a":"op","c":"docs","d":"d1","v":1,"seq":2,"op":[5," 😀"]})");
  expected["src"] = test_identity().alias(src_a);  // others see an alias, never the id
  EXPECT_EQ(*got, expected);
  // The author got no broadcast of its own op: the next frame answers its ping.
  EXPECT_EQ(a.request(json::parse(R"({"a":"pp"})")), json::parse(R"({"a":"pp"})"));
  // Concurrent edit from B at v1: the missing op first, then the ack.
  const auto src_b = b.handshake();
  ASSERT_FALSE(b.send(op_message("d1", 1, 1, "op", json::parse(R"(["<"])"))));
  auto first = b.read();
  auto second = b.read();
  ASSERT_TRUE(first && second);
  // B saw v1 already as a broadcast; the server may send it again before the ack.
  if (is_ack(*first)) {
    EXPECT_EQ(*first, ack(src_b, 1, 2, "d1"));
  } else {
    EXPECT_EQ((*first)["v"], 1);
    EXPECT_EQ(*second, ack(src_b, 1, 2, "d1"));
  }
  auto broadcast = a.read();
  ASSERT_TRUE(broadcast);
  EXPECT_EQ((*broadcast)["v"], 2);
  EXPECT_EQ((*broadcast)["src"], test_identity().alias(src_b));
  EXPECT_EQ(a.request(json::parse(R"({"a":"f","c":"docs","d":"d1","v":null})"))["data"],
            json::parse(R"({"v":3,"data":"<héllo 😀","type":"http://sharejs.org/types/text-unicode"})"));
}

TEST_F(OtsyncdTest, HttpHealthReadinessMetricsAndRest) {
  auto& d = start();
  {
    ws_client a(d.port());
    const auto src = a.handshake();
    a.request(op_message("d1", 0, 1, "create", {{"type", "text-unicode"}, {"data", "ab"}}));
    EXPECT_EQ(a.request(op_message("d1", 1, 2, "op", json::parse(R"([2,"c"])"))), ack(src, 2, 1, "d1"));
    a.request(op_message("d2", 0, 3, "create", {{"type", "text-unicode"}, {"data", "x"}}));
    a.request(op_message("d2", 1, 4, "del", true));
    auto health = http_get(d.port(), "/healthz");
    EXPECT_EQ(health.status, 200U);
    EXPECT_EQ(health.as_json(), json::parse(R"({"status":"ok"})"));
    auto ready = http_get(d.port(), "/readyz");
    EXPECT_EQ(ready.status, 200U);
    EXPECT_EQ(ready.as_json()["status"], "ready");

    auto metrics = http_get(d.port(), "/metrics");
    EXPECT_EQ(metrics.status, 200U);
    EXPECT_NE(metrics.content_type.find("text/plain"), std::string::npos);
    for (const char* name :
         {"otsync_connections_open", "otsync_ops_committed_total", "otsync_submit_latency_seconds",
          "otsync_commit_latency_seconds", "otsync_errors_total", "otsync_send_queue_depth", "otsync_documents_open"}) {
      EXPECT_NE(metrics.body.find(name), std::string::npos) << name;
    }
    EXPECT_EQ(metric(metrics.body, "otsync_connections_open"), 1.0);
    EXPECT_GE(metric(metrics.body, "otsync_ops_committed_total").value_or(0), 4.0);
    EXPECT_GE(metric(metrics.body, "otsync_documents_open").value_or(0), 1.0);
  }

  auto doc = http_get(d.port(), "/api/v1/docs/docs/d1");
  EXPECT_EQ(doc.status, 200U);
  EXPECT_NE(doc.content_type.find("application/json"), std::string::npos);
  EXPECT_EQ(doc.as_json(), json::parse(R"({"collection":"docs","id":"d1","v":2,"type":
      "http://sharejs.org/types/text-unicode","data":"abc"})"));
  EXPECT_EQ(http_get(d.port(), "/api/v1/docs/docs/d1?v=1").as_json()["data"], "ab");
  EXPECT_EQ(http_get(d.port(), "/api/v1/docs/docs/d1?v=0").as_json(),
            json::parse(R"({"collection":"docs","id":"d1","v":0,"type":null})"));
  EXPECT_EQ(http_get(d.port(), "/api/v1/docs/docs/d2").as_json(),
            json::parse(R"({"collection":"docs","id":"d2","v":2,"type":null})"));
  EXPECT_EQ(http_get(d.port(), "/api/v1/docs/docs/never").as_json(),
            json::parse(R"({"collection":"docs","id":"never","v":0,"type":null})"));

  auto future = http_get(d.port(), "/api/v1/docs/docs/d1?v=3");
  EXPECT_EQ(future.status, 404U);
  EXPECT_EQ(future.as_json()["error"]["code"], "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT");
  for (const char* bad : {"/api/v1/docs/docs/d1?v=abc", "/api/v1/docs/docs/d1?v=-1", "/api/v1/docs/docs/d1?v=",
                          "/api/v1/docs/docs/d1/ops?from=x", "/api/v1/docs/docs/d1/ops?from=3&to=1",
                          "/api/v1/docs/docs?limit=0", "/api/v1/docs/docs?limit=100000"}) {
    auto r = http_get(d.port(), bad);
    EXPECT_EQ(r.status, 400U) << bad;
    EXPECT_EQ(r.as_json()["error"]["code"], "ERR_BAD_REQUEST") << bad;
    EXPECT_TRUE(r.as_json()["error"]["message"].is_string()) << bad;
  }

  auto ops = http_get(d.port(), "/api/v1/docs/docs/d1/ops");
  EXPECT_EQ(ops.status, 200U);
  auto list = ops.as_json()["ops"];
  ASSERT_EQ(list.size(), 2U);
  EXPECT_EQ(list[0]["v"], 0);
  EXPECT_EQ(list[0]["create"], json::parse(R"({"type":"http://sharejs.org/types/text-unicode","data":"ab"})"));
  EXPECT_EQ(list[1]["v"], 1);
  EXPECT_EQ(list[1]["seq"], 2);
  EXPECT_EQ(list[1]["op"], json::parse(R"([2,"c"])"));
  EXPECT_TRUE(list[1]["src"].is_string());
  EXPECT_TRUE(list[1]["ts"].is_number());
  auto range = http_get(d.port(), "/api/v1/docs/docs/d1/ops?from=1&to=2").as_json()["ops"];
  ASSERT_EQ(range.size(), 1U);
  EXPECT_EQ(range[0]["v"], 1);
  EXPECT_EQ(http_get(d.port(), "/api/v1/docs/docs/d1/ops?from=5").as_json()["ops"], json::array());

  auto docs = http_get(d.port(), "/api/v1/docs/docs");
  EXPECT_EQ(docs.status, 200U);
  EXPECT_EQ(docs.as_json(), json::parse(R"({"collection":"docs","documents":[
      {"id":"d1","v":2,"type":"http://sharejs.org/types/text-unicode"},{"id":"d2","v":2,"type":null}]})"));
  auto page = http_get(d.port(), "/api/v1/docs/docs?after=d1&limit=1").as_json()["documents"];
  ASSERT_EQ(page.size(), 1U);
  EXPECT_EQ(page[0]["id"], "d2");
  EXPECT_EQ(http_get(d.port(), "/api/v1/docs/empty").as_json()["documents"], json::array());

  for (const char* unknown : {"/nope", "/api/v1", "/api/v1/docs/docs/d1/ops/extra", "/healthz/x"}) {
    auto r = http_get(d.port(), unknown);
    EXPECT_EQ(r.status, 404U) << unknown;
    EXPECT_EQ(r.as_json()["error"]["code"], "ERR_NOT_FOUND") << unknown;
  }
  auto post = http_get(d.port(), "/healthz", http::verb::post);
  EXPECT_EQ(post.status, 405U);
  EXPECT_TRUE(post.as_json()["error"]["code"].is_string());
  // A WebSocket upgrade anywhere but /ws.
  EXPECT_THROW(
      {
        asio::io_context io;
        websocket::stream<beast::tcp_stream> ws(io);
        beast::get_lowest_layer(ws).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), d.port()));
        ws.handshake("127.0.0.1", "/other");
      },
      beast::system_error);
}

// Every bad REST parameter is a 400 with a JSON error, never a 5xx: versions
// and op ranges past 2^53 - 1 (what JS clients can represent) or past 2^64,
// and odd ids. Shared by the SQLite and memory store tests below.
void expect_bad_request(std::uint16_t port, const std::string& target) {
  auto r = http_get(port, target);
  EXPECT_EQ(r.status, 400U) << target << ": " << r.body;
  auto body = r.as_json();
  ASSERT_TRUE(body.is_object()) << target << ": " << r.body;
  EXPECT_EQ(body["error"]["code"], "ERR_BAD_REQUEST") << target;
  EXPECT_TRUE(body["error"]["message"].is_string()) << target;
  EXPECT_EQ(body.size(), 1U) << target;
}

void check_rest_parameters(std::uint16_t port) {
  {
    ws_client a(port);
    const auto src = a.handshake();
    EXPECT_EQ(a.request(op_message("d1", 0, 1, "create", {{"type", "text-unicode"}, {"data", "ab"}})),
              ack(src, 1, 0, "d1"));
    EXPECT_EQ(a.request(op_message("d1", 1, 2, "op", json::parse(R"([2,"c"])"))), ack(src, 2, 1, "d1"));
    EXPECT_EQ(a.request(op_message("a/b", 0, 3, "create", {{"type", "text-unicode"}, {"data", "slash"}})),
              ack(src, 3, 0, "a/b"));
  }
  for (const char* bad : {
           // from: the store called first + 10000 (wrapped) an inverted range: 503 before.
           "/api/v1/docs/docs/d1/ops?from=18446744073709551615",
           "/api/v1/docs/docs/d1/ops?from=18446744073709551616",
           "/api/v1/docs/docs/d1/ops?from=9007199254740992",
           "/api/v1/docs/docs/d1/ops?from=18446744073709541615",
           "/api/v1/docs/docs/d1/ops?to=18446744073709551615",
           "/api/v1/docs/docs/d1/ops?from=0&to=9007199254740992",
           "/api/v1/docs/docs/d1/ops?from=2&to=1",
           "/api/v1/docs/docs/d1/ops?from=-1",
           "/api/v1/docs/docs/d1/ops?from=1e3",
           "/api/v1/docs/docs/d1/ops?from=+1",
           "/api/v1/docs/docs/d1/ops?from=%201",
           "/api/v1/docs/docs/d1/ops?to=",
           // v: above 2^53 - 1 (was 404 "newer than the snapshot") or 2^64.
           "/api/v1/docs/docs/d1?v=9007199254740992",
           "/api/v1/docs/docs/d1?v=18446744073709551615",
           "/api/v1/docs/docs/d1?v=18446744073709551616",
           "/api/v1/docs/docs/d1?v=0x10",
           // limit.
           "/api/v1/docs/docs?limit=18446744073709551616",
           "/api/v1/docs/docs?limit=1001",
           // Names that are not UTF-8 (no document can have one), and malformed escapes.
           "/api/v1/docs/docs/%FF",
           "/api/v1/docs/%C3%28/d1",
           "/api/v1/docs/%ED%A0%80/d1/ops",
           "/api/v1/docs/%80",
           "/api/v1/docs/docs/%zz",
           "/api/v1/docs/docs/d1%",
           "/api/v1/docs/docs/d1?v=%4",
       }) {
    expect_bad_request(port, bad);
  }
  // The edges that are fine.
  auto last = http_get(port, "/api/v1/docs/docs/d1/ops?from=9007199254740991");
  EXPECT_EQ(last.status, 200U) << last.body;
  EXPECT_EQ(last.as_json(), json::parse(R"({"ops":[]})"));
  auto capped = http_get(port, "/api/v1/docs/docs/d1/ops?from=1&to=9007199254740991");
  EXPECT_EQ(capped.status, 200U) << capped.body;
  ASSERT_EQ(capped.as_json()["ops"].size(), 1U);
  EXPECT_EQ(capped.as_json()["ops"][0]["v"], 1);
  auto newest = http_get(port, "/api/v1/docs/docs/d1?v=9007199254740991");
  EXPECT_EQ(newest.status, 404U) << newest.body;
  EXPECT_EQ(newest.as_json()["error"]["code"], "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT");
  EXPECT_EQ(http_get(port, "/api/v1/docs/docs/d1?v=0002").as_json()["data"], "abc");
  // An id holding '/' is addressed with %2F.
  auto slash = http_get(port, "/api/v1/docs/docs/a%2Fb");
  EXPECT_EQ(slash.status, 200U) << slash.body;
  EXPECT_EQ(slash.as_json(), json::parse(R"({"collection":"docs","id":"a/b","v":1,"type":
      "http://sharejs.org/types/text-unicode","data":"slash"})"));
  auto slash_ops = http_get(port, "/api/v1/docs/docs/a%2Fb/ops");
  EXPECT_EQ(slash_ops.status, 200U) << slash_ops.body;
  EXPECT_EQ(slash_ops.as_json()["ops"].size(), 1U);
  EXPECT_EQ(http_get(port, "/api/v1/docs/docs/a/b").status, 404U);  // a raw '/' separates segments
  // Ids longer than --max-id-bytes (256) name no document: 400, as over WebSocket.
  for (const std::string& target :
       {"/api/v1/docs/docs/" + std::string(257, 'x'), "/api/v1/docs/" + std::string(257, 'c'),
        "/api/v1/docs/docs/" + std::string(257, 'x') + "/ops"}) {
    expect_bad_request(port, target);
  }
  EXPECT_EQ(http_get(port, "/api/v1/docs/docs/" + std::string(256, 'x')).status, 200U);
  // NUL and other control characters in names: a clear 4xx or a proper answer.
  for (const std::string& id : {std::string("a\0b", 3), std::string("\x01\x1f\x7f"), std::string("\n")}) {
    std::string encoded;
    for (char c : id) {
      static constexpr char hex[] = "0123456789ABCDEF";
      encoded += '%';
      encoded += hex[static_cast<unsigned char>(c) >> 4U];
      encoded += hex[static_cast<unsigned char>(c) & 0xFU];
    }
    for (const std::string& target : {"/api/v1/docs/docs/" + encoded, "/api/v1/docs/docs/" + encoded + "/ops",
                                      "/api/v1/docs/docs/" + encoded + "?v=0", "/api/v1/docs/" + encoded}) {
      auto r = http_get(port, target);
      auto body = r.as_json();
      ASSERT_TRUE(body.is_object()) << target << ": " << r.body;
      if (r.status == 200U) {
        if (body.contains("id")) {
          EXPECT_EQ(body["id"], id) << target;
        }
        if (body.contains("v")) {
          EXPECT_EQ(body["v"], 0) << target;
        }
      } else {
        EXPECT_GE(r.status, 400U) << target;
        EXPECT_LT(r.status, 500U) << target;
        EXPECT_TRUE(body["error"]["code"].is_string()) << target;
      }
    }
  }
  EXPECT_EQ(http_get(port, "/healthz").status, 200U);
}

// One raw HTTP/1.1 request (`target` sent byte for byte, NUL and backslashes included) with
// Connection: close; the status code, the header block and the body (after the blank line). Bounded by 5 s.
std::tuple<unsigned, std::string, std::string> raw_http(std::uint16_t port, std::string_view method,
                                                        std::string_view target) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket");
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    throw std::runtime_error("connect");
  }
  std::string request = std::string(method) + " ";
  request += target;
  request += " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  (void)!write(fd, request.data(), request.size());
  std::string response;
  char buffer[65536];
  for (;;) {
    const auto n = read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    response.append(buffer, static_cast<std::size_t>(n));
  }
  close(fd);
  unsigned status = 0;
  if (response.rfind("HTTP/1.1 ", 0) == 0) status = static_cast<unsigned>(std::stoul(response.substr(9, 3)));
  const auto blank = response.find("\r\n\r\n");
  if (blank == std::string::npos) return {status, response, std::string()};
  return {status, response.substr(0, blank), response.substr(blank + 4)};
}

// The editor page (--editor-dir): its files and nothing else, whatever the path says.
TEST_F(OtsyncdTest, EditorPageServesItsFilesOnly) {
  const auto site = dir_ / "site";
  std::filesystem::create_directories(site / "sub");
  std::ofstream(site / "index.html") << "<!doctype html><title>editor</title>";
  std::ofstream(site / "editor.js") << "console.log('hi');";
  std::ofstream(site / "editor.css") << "body{}";
  std::ofstream(site / ".hidden") << "hidden";
  std::ofstream(site / "sub" / "inner.js") << "inner";
  std::ofstream(dir_ / "secret.txt") << "TOP-SECRET";
  std::filesystem::create_symlink(dir_ / "secret.txt", site / "link.js");
  auto& d = start({"--editor-dir", site.string(), "--store", "memory:"});

  auto index = http_get(d.port(), "/");
  EXPECT_EQ(index.status, 200U);
  EXPECT_EQ(index.body, "<!doctype html><title>editor</title>");
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(http_get(d.port(), "/index.html").body, index.body);
  auto js = http_get(d.port(), "/editor/editor.js");
  EXPECT_EQ(js.status, 200U);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(js.body, "console.log('hi');");
  EXPECT_EQ(http_get(d.port(), "/editor/editor.css").content_type, "text/css; charset=utf-8");
  {
    auto [status, headers, body] = raw_http(d.port(), "HEAD", "/editor/editor.js");
    EXPECT_EQ(status, 200U);
    EXPECT_NE(headers.find("Content-Type: text/javascript; charset=utf-8"), std::string::npos) << headers;
    EXPECT_NE(headers.find("Content-Length: 18"), std::string::npos) << headers;
    EXPECT_EQ(body, "");
  }
  auto config = http_get(d.port(), "/editor-config.json");
  EXPECT_EQ(config.status, 200U);
  EXPECT_TRUE(config.as_json()["tokenUrl"].is_null());

  // Missing files, dot files, subdirectories, links out of the directory, traversal in every spelling.
  for (const char* target : {"/editor/nope.js",
                             "/editor/.hidden",
                             "/editor/sub",
                             "/editor/sub/inner.js",
                             "/editor/link.js",
                             "/editor/..",
                             "/editor/../secret.txt",
                             "/editor/%2e%2e/secret.txt",
                             "/editor/%2E%2E%2Fsecret.txt",
                             "/editor/..%2fsecret.txt",
                             "/editor/..%5csecret.txt",
                             "/editor/%00",
                             "/editor/editor.js%00.html",
                             "/editor/editor.js%2f",
                             "/editor/",
                             "/editor/%2fetc%2fpasswd",
                             "/editor/index.html/..",
                             "/../secret.txt",
                             "/..%2fsecret.txt",
                             "/editor/./editor.js%2f..%2f..%2fsecret.txt",
                             "/editor/%c0%ae%c0%ae"}) {
    auto r = http_get(d.port(), target);
    EXPECT_EQ(r.status, 404U) << target;
    EXPECT_EQ(r.as_json()["error"]["code"], "ERR_NOT_FOUND") << target;
    EXPECT_EQ(r.body.find("TOP-SECRET"), std::string::npos) << target;
  }
  // Bytes Beast's parser itself refuses (a raw backslash, NUL, spaces) never reach a file either.
  for (std::string_view target :
       {std::string_view("/editor/..\\secret.txt"), std::string_view("/editor\\..\\secret.txt"),
        std::string_view("/editor/editor.js\0", 18), std::string_view("/editor/a b")}) {
    auto [status, headers, body] = raw_http(d.port(), "GET", target);
    EXPECT_TRUE(status == 400U || status == 404U || status == 0U) << target << ": " << status;
    EXPECT_EQ(body.find("TOP-SECRET"), std::string::npos) << target;
  }
  auto [status, headers, body] = raw_http(d.port(), "GET", "/editor/../../../../../../etc/passwd");
  EXPECT_EQ(status, 404U);
  EXPECT_EQ(body.find("root:"), std::string::npos);
  // Only GET and HEAD.
  EXPECT_EQ(http_get(d.port(), "/editor/editor.js", http::verb::post).status, 405U);
  // The WebSocket still works beside it.
  ws_client c(d.port());
  EXPECT_FALSE(c.handshake().empty());
}

TEST_F(OtsyncdTest, EditorPageOffOrMissing) {
  {
    auto& d = start({"--no-editor", "--store", "memory:"});
    for (const char* target : {"/", "/index.html", "/editor/editor.js", "/editor-config.json"}) {
      auto r = http_get(d.port(), target);
      EXPECT_EQ(r.status, 404U) << target;
      EXPECT_EQ(r.as_json()["error"]["code"], "ERR_NOT_FOUND") << target;
    }
  }
  daemons_.clear();
  auto& d = start({"--editor-dir", (dir_ / "no-such-dir").string(), "--store", "memory:", "--log-level", "warn"});
  auto r = http_get(d.port(), "/");
  EXPECT_EQ(r.status, 503U);
  EXPECT_EQ(r.as_json()["error"]["code"], "ERR_EDITOR_UNAVAILABLE");
  EXPECT_NE(r.as_json()["error"]["message"].get<std::string>().find("no-such-dir"), std::string::npos);
  EXPECT_NE(d.log().find("editor_unavailable"), std::string::npos);
  EXPECT_EQ(http_get(d.port(), "/healthz").status, 200U);
}

TEST_F(OtsyncdTest, EditorTokenUrlMustBeAUrlOrAPath) {
  auto r = run_command({"--editor-token-url", "javascript:alert(1)", "--store", "memory:", "--listen", "127.0.0.1:0",
                        "--data-dir", dir_.string()});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, -1) << "did not exit: " << r.output;
  EXPECT_NE(r.output.find("--editor-token-url"), std::string::npos) << r.output;
}

TEST_F(OtsyncdTest, RestBadParametersAre400OnSqlite) {
  check_rest_parameters(start().port());
}

TEST_F(OtsyncdTest, RestBadParametersAre400OnMemory) {
  check_rest_parameters(start({"--store", "memory:"}).port());
}

TEST_F(OtsyncdTest, FrameOverTheLimitClosesWith1009AndOthersCarryOn) {
  auto& d = start({"--max-message-bytes", "1024"});
  ws_client big(d.port());
  ws_client other(d.port());
  big.handshake();
  other.handshake();
  json message = op_message("d1", 0, 1, "create", {{"type", "text-unicode"}, {"data", std::string(2000, 'x')}});
  ASSERT_FALSE(big.send(message));
  EXPECT_EQ(big.wait_close(10), 1009) << big.error().message();
  // A frame just under the limit is fine, and the other connection never noticed.
  json small = op_message("d1", 0, 1, "create", {{"type", "text-unicode"}, {"data", std::string(900, 'y')}});
  EXPECT_EQ(other.request(small)["v"], 0);
  EXPECT_EQ(other.request(json::parse(R"({"a":"pp"})")), json::parse(R"({"a":"pp"})"));
}

// The WebSocket layer on a raw socket: the upgrade response, pings between
// the fragments of a message (several frames in one TCP segment), and a
// protocol violation.
class raw_ws {
 public:
  explicit raw_ws(std::uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval timeout{10, 0};  // bounded reads: a missing reply fails instead of hanging
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  void write(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  /// Reads until `delimiter` (inclusive).
  std::string read_until(const std::string& delimiter) {
    while (in_.find(delimiter) == std::string::npos && fill()) {
    }
    auto end = in_.find(delimiter);
    if (end == std::string::npos) return {};
    auto out = in_.substr(0, end + delimiter.size());
    in_.erase(0, end + delimiter.size());
    return out;
  }
  /// One server frame: (opcode, payload); opcode -1 when the connection ended first.
  std::pair<int, std::string> frame() {
    while (in_.size() < 2 && fill()) {
    }
    if (in_.size() < 2) return {-1, {}};
    auto b0 = static_cast<unsigned char>(in_[0]);
    auto b1 = static_cast<unsigned char>(in_[1]);
    EXPECT_EQ(b1 & 0x80, 0) << "server frames are not masked";
    std::size_t size = b1 & 0x7F;
    std::size_t header = 2;
    if (size == 126) {
      while (in_.size() < 4 && fill()) {
      }
      size = (static_cast<std::size_t>(static_cast<unsigned char>(in_[2])) << 8) | static_cast<unsigned char>(in_[3]);
      header = 4;
    }
    EXPECT_NE(size, 127U);
    while (in_.size() < header + size && fill()) {
    }
    if (in_.size() < header + size) return {-1, {}};
    std::pair<int, std::string> out{b0 & 0x0F, in_.substr(header, size)};
    EXPECT_TRUE(b0 & 0x80) << "server frames are not fragmented";
    in_.erase(0, header + size);
    return out;
  }
  static std::string client_frame(int opcode, const std::string& payload, bool fin = true, bool masked = true) {
    std::string out;
    out.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
    out.push_back(static_cast<char>((masked ? 0x80 : 0) | payload.size()));  // short payloads only
    const char mask[4] = {'\x0f', '\x1e', '\x2d', '\x3c'};
    if (masked) out.append(mask, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) out.push_back(masked ? payload[i] ^ mask[i % 4] : payload[i]);
    return out;
  }

 private:
  bool fill() {
    char buffer[4096];
    beast::error_code ec;
    auto n = socket_.read_some(asio::buffer(buffer), ec);
    if (ec) return false;
    in_.append(buffer, n);
    return true;
  }
  asio::io_context io_;
  tcp::socket socket_;
  std::string in_;
};

TEST_F(OtsyncdTest, WebSocketFramingOnARawSocket) {
  auto& d = start({"--store", "memory:"});
  raw_ws c(d.port());
  c.write(
      "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  auto response = c.read_until("\r\n\r\n");
  EXPECT_TRUE(response.starts_with("HTTP/1.1 101")) << response;
  EXPECT_NE(response.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos) << response;  // RFC 6455's example
  EXPECT_NE(response.find("Server: otsyncd"), std::string::npos) << response;

  // {"a":"pp"} in three fragments with pings between them, all in one write.
  c.write(raw_ws::client_frame(0x1, R"({"a")", false) + raw_ws::client_frame(0x9, "one") +
          raw_ws::client_frame(0x0, R"(:"p)", false) + raw_ws::client_frame(0x9, "two") +
          raw_ws::client_frame(0xA, "unsolicited") + raw_ws::client_frame(0x0, R"(p"})"));
  EXPECT_EQ(c.frame(), (std::pair<int, std::string>{0xA, "one"}));
  EXPECT_EQ(c.frame(), (std::pair<int, std::string>{0xA, "two"}));
  EXPECT_EQ(c.frame(), (std::pair<int, std::string>{0x1, R"({"a":"pp"})"}));

  // Invalid UTF-8 in a text frame: 1007.
  {
    raw_ws bad(d.port());
    bad.write(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    bad.read_until("\r\n\r\n");
    bad.write(raw_ws::client_frame(0x1, "\xc3("));
    auto close = bad.frame();
    EXPECT_EQ(close.first, 0x8);
    ASSERT_GE(close.second.size(), 2U);
    EXPECT_EQ((static_cast<unsigned char>(close.second[0]) << 8) | static_cast<unsigned char>(close.second[1]), 1007);
  }

  // An unmasked client frame: close 1002, then the server closes the connection.
  c.write(raw_ws::client_frame(0x1, R"({"a":"pp"})", true, false));
  auto close = c.frame();
  EXPECT_EQ(close.first, 0x8);
  ASSERT_GE(close.second.size(), 2U);
  EXPECT_EQ((static_cast<unsigned char>(close.second[0]) << 8) | static_cast<unsigned char>(close.second[1]), 1002);
  EXPECT_EQ(c.frame().first, -1);

  // A bad version is refused with 426.
  raw_ws old(d.port());
  old.write(
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
  auto refused = old.read_until("\r\n\r\n");
  EXPECT_TRUE(refused.starts_with("HTTP/1.1 426")) << refused;
  EXPECT_NE(refused.find("Sec-WebSocket-Version: 13"), std::string::npos) << refused;
}

// A silent connection is pinged at half the idle timeout and stays up while
// it answers; one that stays silent is dropped.
TEST_F(OtsyncdTest, SilentWebSocketsArePingedThenDropped) {
  auto& d = start({"--store", "memory:", "--ws-idle-timeout-ms", "600"});
  auto upgrade = [&](raw_ws& c) {
    c.write(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    EXPECT_TRUE(c.read_until("\r\n\r\n").starts_with("HTTP/1.1 101"));
  };
  raw_ws live(d.port());
  raw_ws silent(d.port());
  upgrade(live);
  upgrade(silent);
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(live.frame(), (std::pair<int, std::string>{0x9, ""}));
    live.write(raw_ws::client_frame(0xA, ""));
  }
  EXPECT_GE(std::chrono::steady_clock::now() - started, 600ms);  // three pings, each after 300 ms of silence
  live.write(raw_ws::client_frame(0x1, R"({"a":"pp"})"));
  EXPECT_EQ(live.frame(), (std::pair<int, std::string>{0x1, R"({"a":"pp"})"}));
  // The silent one got its ping, never answered, and is gone by now.
  EXPECT_EQ(silent.frame(), (std::pair<int, std::string>{0x9, ""}));
  EXPECT_EQ(silent.frame().first, -1);
}

TEST_F(OtsyncdTest, BinaryFrameCloses) {
  auto& d = start();
  ws_client c(d.port());
  c.handshake();
  ASSERT_FALSE(c.send_binary(R"({"a":"pp"})"));
  // RFC 6455 1003: a data type the endpoint cannot accept (text only).
  EXPECT_EQ(c.wait_close(10), 1003);
  ws_client other(d.port());
  EXPECT_EQ(other.request(json::parse(R"({"a":"pp"})")), json::parse(R"({"a":"pp"})"));
}

TEST_F(OtsyncdTest, InvalidJsonGetsAnErrorFrameThenClose1007) {
  auto& d = start();
  for (const char* frame : {"{not json", "[1,2,3]", "42"}) {
    ws_client c(d.port());
    c.handshake();
    ASSERT_FALSE(c.send(std::string(frame)));
    auto error = c.read();
    ASSERT_TRUE(error) << frame;
    EXPECT_EQ((*error)["error"]["code"], "ERR_MESSAGE_BADLY_FORMED") << frame;
    EXPECT_EQ(c.wait_close(10), 1007) << frame;
  }
  // Validation errors do not close.
  ws_client c(d.port());
  auto reply = c.request(json::parse(R"({"a":"zz"})"));
  EXPECT_EQ(reply["error"]["code"], "ERR_MESSAGE_BADLY_FORMED");
  reply = c.request(json::parse(R"({"a":"op","c":"docs","d":"d1","v":5,"seq":1,"op":["x"]})"));
  EXPECT_EQ(reply["error"]["code"], "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT");
  ASSERT_FALSE(c.send(std::string(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"op":["\ud800"]})")));
  reply = c.read().value_or(json());
  EXPECT_EQ(reply["error"]["code"], "ERR_OT_OP_BADLY_FORMED");
  EXPECT_EQ(c.request(json::parse(R"({"a":"pp"})")), json::parse(R"({"a":"pp"})"));
  auto metrics = http_get(d.port(), "/metrics").body;
  EXPECT_NE(metrics.find("otsync_errors_total{code=\"ERR_MESSAGE_BADLY_FORMED\"}"), std::string::npos) << metrics;
}

TEST_F(OtsyncdTest, SlowConsumerIsClosedWith1013AndOthersAreServed) {
  auto& d = start({"--store", "memory:", "--max-send-queue", "64", "--max-message-bytes", "65536"});
  ws_client writer(d.port());
  const auto src = writer.handshake();
  const std::string chunk(8000, 'x');
  EXPECT_EQ(writer.request(op_message("big", 0, 1, "create", {{"type", "text-unicode"}, {"data", chunk}})),
            ack(src, 1, 0, "big"));

  ws_client reader(d.port(), 4096);
  reader.handshake();
  auto subscribed = reader.request(json::parse(R"({"a":"s","c":"docs","d":"big","v":null})"));
  ASSERT_EQ(subscribed["data"]["v"], 1);
  // The reader stops reading; the writer replaces the whole text, op after op.
  bool dropped = false;
  std::uint64_t v = 1;
  for (int i = 0; i < 4000 && !dropped; ++i, ++v) {
    std::string replacement(8000, static_cast<char>('a' + i % 26));
    auto reply = writer.request(op_message("big", v, 2 + v, "op", json::array({json{{"d", 8000}}, replacement})));
    ASSERT_EQ(reply, ack(src, 2 + v, v, "big")) << "op " << i;
    if (i % 50 == 49) {
      auto metrics = http_get(d.port(), "/metrics").body;
      dropped = metric(metrics, "otsync_slow_consumer_disconnects_total").value_or(0) >= 1;
    }
  }
  ASSERT_TRUE(dropped) << "the reader was never dropped";
  // The server kept serving the writer, and serves new connections.
  EXPECT_EQ(writer.request(op_message("big", v, 2 + v, "op", json::array({"!"}))), ack(src, 2 + v, v, "big"));
  ws_client fresh(d.port());
  EXPECT_EQ(fresh.request(json::parse(R"({"a":"pp"})")), json::parse(R"({"a":"pp"})"));
  // What the reader has buffered, then the close (with a larger window now,
  // or the backlog trickles through the tiny one).
  reader.set_receive_buffer(1 << 20);
  EXPECT_EQ(reader.wait_close(100000, 10s), 1013);
  std::optional<double> connections;
  for (int i = 0; i < 200; ++i) {
    connections = metric(http_get(d.port(), "/metrics").body, "otsync_connections_open");
    if (connections == 2.0) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(connections, 2.0);
}

TEST_F(OtsyncdTest, SigtermDrainsAndExitsZero) {
  auto& d = start({"--shutdown-grace-ms", "3000", "--log-level", "debug"});
  ws_client c(d.port());
  const auto src = c.handshake();
  EXPECT_EQ(c.request(op_message("d1", 0, 1, "create", {{"type", "text-unicode"}, {"data", "x"}})),
            ack(src, 1, 0, "d1"));
  EXPECT_EQ(c.request(json::parse(R"({"a":"s","c":"docs","d":"d1","v":1})")),
            json::parse(R"({"a":"s","c":"docs","d":"d1"})"));
  http_client probe(d.port());
  auto before = probe.get("/readyz");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 200U);

  // Let the server re-arm its read on the keep-alive connection: once draining,
  // a response completing closes the connection instead of reading again.
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(kill(d.pid(), SIGTERM), 0);
  // Wait (bounded) until the server says it is draining, then ask on the open
  // HTTP connection: the WebSocket is not read yet, so the server is still
  // waiting for its close handshake.
  for (int i = 0; i < 500 && d.log().find("draining") == std::string::npos; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_NE(d.log().find("draining"), std::string::npos);
  std::optional<http_result> during = probe.get("/readyz");
  ASSERT_TRUE(during) << "no answer on the open HTTP connection while draining: " << probe.error_.message();
  EXPECT_EQ(during->status, 503U);
  EXPECT_EQ(during->as_json()["status"], "draining");
  // No new connections are taken.
  {
    asio::io_context io;
    tcp::socket s(io);
    beast::error_code ec;
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), d.port()), ec);
    if (!ec) {
      beast::tcp_stream stream(std::move(s));
      http::request<http::string_body> req{http::verb::get, "/readyz", 11};
      req.set(http::field::host, "127.0.0.1");
      http::write(stream, req, ec);
      // Either nobody answers, or not with 200.
      if (!ec) {
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        stream.expires_after(2s);
        http::read(stream, buffer, res, ec);
        if (!ec) {
          EXPECT_NE(res.result_int(), 200U);
        }
      }
    }
  }
  EXPECT_EQ(c.wait_close(100, 10s), 1001);
  auto status = d.stop(0, 15s);  // signal 0: just wait
  ASSERT_TRUE(status) << "otsyncd did not exit after SIGTERM";
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0);
}

// Clients that never answer the close handshake outlast the shutdown grace: their sessions, their
// subscriptions and the presences they show are torn down with the server, which still exits 0
// (under ASan this catches a session outliving the documents it would unsubscribe from).
TEST_F(OtsyncdTest, SessionsStillOpenPastTheShutdownGraceGoWithTheServer) {
  auto& d = start({"--shutdown-grace-ms", "100", "--threads", "3"});
  std::vector<std::unique_ptr<ws_client>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<ws_client>(d.port()));
    clients.back()->handshake();
  }
  EXPECT_EQ(clients[0]->request(op_message("d1", 0, 1, "create", {{"type", "text-unicode"}, {"data", "x"}}))["a"],
            "op");
  for (auto& c : clients) {
    EXPECT_EQ(c->request(json::parse(R"({"a":"s","c":"docs","d":"d1","v":1})")),
              json::parse(R"({"a":"s","c":"docs","d":"d1"})"));
    EXPECT_EQ(c->request(json::parse(R"({"a":"ps","ch":"docs.d1","seq":1})"))["a"], "ps");
  }
  for (std::size_t i = 0; i < clients.size(); ++i) {
    json presence = json::parse(R"({"a":"p","ch":"docs.d1","p":{"index":0},"pv":1,"c":"docs","d":"d1","v":1})");
    presence["id"] = "p" + std::to_string(i);
    ASSERT_FALSE(clients[i]->send(presence));
  }
  std::this_thread::sleep_for(200ms);  // the presences reach the server and go out to the others
  ASSERT_EQ(kill(d.pid(), SIGTERM), 0);
  // Nobody reads or answers the close frames: the server gives up after its grace and exits.
  auto status = d.stop(0, 15s);
  ASSERT_TRUE(status) << "otsyncd did not exit after SIGTERM";
  ASSERT_TRUE(WIFEXITED(*status)) << d.log();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << d.log();
}

TEST_F(OtsyncdTest, CorruptStoredDataIsA500OverRestAndAnErrorOverWebSocket) {
  {
    auto& d = start();
    {
      ws_client c(d.port());
      auto src = c.handshake();
      ASSERT_EQ(c.request(op_message("bad", 0, 1, "create", {{"type", "text-unicode"}, {"data", "abc"}})),
                ack(src, 1, 0, "bad"));
      ASSERT_EQ(c.request(op_message("bad", 1, 2, "op", json::array({3, "d"}))), ack(src, 2, 1, "bad"));
      ASSERT_EQ(c.request(op_message("fine", 0, 3, "create", {{"type", "text-unicode"}, {"data", "ok"}})),
                ack(src, 3, 0, "fine"));
    }
    auto status = d.stop(SIGTERM, 10s);
    ASSERT_TRUE(status && WIFEXITED(*status));
  }
  // The stored op at version 1 now reaches past the end of the text before it.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "db").c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, R"(UPDATE ops SET body = '{"op":[100,"x"]}' WHERE id = 'bad' AND version = 1)", nullptr,
                         nullptr, &error),
            SQLITE_OK)
      << (error ? error : "");
  EXPECT_EQ(sqlite3_changes(db), 1);
  sqlite3_free(error);
  sqlite3_close(db);

  auto& again = start();
  for (const char* target : {"/api/v1/docs/docs/bad", "/api/v1/docs/docs/bad?v=2"}) {
    SCOPED_TRACE(target);
    auto res = http_get(again.port(), target);
    EXPECT_EQ(res.status, 500U);
    EXPECT_EQ(res.as_json()["error"]["code"], "ERR_DATABASE_CORRUPT");
  }
  ws_client c(again.port());
  c.handshake();
  auto reply = c.request(json::parse(R"({"a":"f","c":"docs","d":"bad"})"));
  EXPECT_EQ(reply["error"]["code"], "ERR_DATABASE_CORRUPT");
  // Other documents are served as before.
  auto fine = http_get(again.port(), "/api/v1/docs/docs/fine");
  EXPECT_EQ(fine.status, 200U);
  EXPECT_EQ(fine.as_json()["data"], "ok");
}

TEST_F(OtsyncdTest, SqliteCheckpointPagesReachTheStore) {
  // 300 ops, each its own commit (a few pages of the write-ahead log apiece): with
  // --sqlite-checkpoint-pages 100 the log is copied back every 100 pages, so its file stays near
  // that size (with the default it would hold every page written: several times more).
  auto& d = start({"--sqlite-checkpoint-pages", "100", "--sqlite-cache-mib", "4"});
  ws_client c(d.port());
  const auto src = c.handshake();
  ASSERT_EQ(c.request(op_message("wal", 0, 1, "create", {{"type", "text-unicode"}, {"data", ""}})),
            ack(src, 1, 0, "wal"));
  for (std::uint64_t v = 1; v <= 300; ++v) {
    ASSERT_EQ(c.request(op_message("wal", v, v + 1, "op", json::array({std::string(40, 'x')}))),
              ack(src, v + 1, v, "wal"));
  }
  const auto wal = std::filesystem::file_size(dir_ / "db-wal");
  EXPECT_LT(wal, 200U * 4200U) << "the log outgrew --sqlite-checkpoint-pages";
  EXPECT_GT(wal, 0U);
}

TEST_F(OtsyncdTest, AckedOpsSurviveSigkillExactlyOnce) {
  std::vector<json> acked;  // acks, in order
  std::string src;
  {
    auto& d = start();
    ws_client c(d.port());
    src = c.handshake();
    acked.push_back(c.request(op_message("dur", 0, 1, "create", {{"type", "text-unicode"}, {"data", ""}})));
    ASSERT_EQ(acked.back(), ack(src, 1, 0, "dur"));
    std::uint64_t seq = 2;
    for (std::uint64_t v = 1; v <= 40; ++v, ++seq) {
      acked.push_back(
          c.request(op_message("dur", v, seq, "op", v == 1 ? json::array({"a"}) : json::array({v - 1, "a"}))));
      ASSERT_EQ(acked.back(), ack(src, seq, v, "dur"));
    }
    // Pipelined ops, some acked, then SIGKILL.
    for (std::uint64_t v = 41; v <= 80; ++v, ++seq)
      ASSERT_FALSE(c.send(op_message("dur", v, seq, "op", json::array({v - 1, "b"}))));
    for (int i = 0; i < 5; ++i) {
      auto m = c.read();
      ASSERT_TRUE(m && is_ack(*m));
      acked.push_back(*m);
    }
    ASSERT_EQ(kill(d.pid(), SIGKILL), 0);
    // Acks already on their way count too.
    while (auto m = c.read(2s)) {
      if (is_ack(*m)) acked.push_back(*m);
    }
    auto status = d.stop(0, 10s);
    ASSERT_TRUE(status && WIFSIGNALED(*status));
  }
  auto& again = start();
  auto ops = http_get(again.port(), "/api/v1/docs/docs/dur/ops").as_json()["ops"];
  ASSERT_GE(ops.size(), acked.size());
  // A contiguous log, each (src, seq) once, every acked op present at its version.
  std::set<std::uint64_t> seqs;
  ot::rope text;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    ASSERT_EQ(ops[i]["v"], i);
    EXPECT_EQ(ops[i]["src"], test_identity().alias(src));
    EXPECT_TRUE(seqs.insert(ops[i]["seq"].get<std::uint64_t>()).second) << "duplicate seq " << ops[i]["seq"];
    if (i > 0) {
      auto op = protocol::op_from_json(ops[i]["op"]);
      ASSERT_TRUE(op);
      ASSERT_FALSE(ot::apply(text, *op));
    }
  }
  for (const auto& a : acked) {
    const auto v = a["v"].get<std::uint64_t>();
    ASSERT_LT(v, ops.size());
    EXPECT_EQ(ops[v]["seq"], a["seq"]);
  }
  auto doc = http_get(again.port(), "/api/v1/docs/docs/dur").as_json();
  EXPECT_EQ(doc["v"], ops.size());
  EXPECT_EQ(doc["data"], text.to_string());

  // A resend of an acked op after the restart is acked again, not applied.
  ws_client c(again.port());
  EXPECT_EQ(c.handshake(src), src);
  json resend = op_message("dur", 10, 11, "op", json::array({9, "a"}));
  resend["src"] = src;
  ASSERT_FALSE(c.send(resend));
  auto reply = c.read_until(is_ack);
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, ack(src, 11, 10, "dur"));
  EXPECT_EQ(http_get(again.port(), "/api/v1/docs/docs/dur").as_json(), doc);
}

TEST_F(OtsyncdTest, MemoryStoreServes) {
  auto& d = start({"--store", "memory:"});
  ws_client c(d.port());
  const auto src = c.handshake();
  EXPECT_EQ(c.request(op_message("m", 0, 1, "create", {{"type", "text-unicode"}, {"data", "mem"}})),
            ack(src, 1, 0, "m"));
  EXPECT_EQ(http_get(d.port(), "/api/v1/docs/docs/m").as_json()["data"], "mem");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "db"));
}

// /metrics follows the Prometheus conventions on both local stores: read by a
// real exposition-format parser, no two families colliding under OpenMetrics,
// counters named *_total that never go down between scrapes.
TEST_F(OtsyncdTest, MetricsFollowPrometheusConventions) {
  for (const std::string store : {"memory:", "sqlite"}) {
    SCOPED_TRACE(store);
    auto& d = store == "sqlite" ? start() : start({"--store", store});
    std::vector<std::string> scrapes{http_get(d.port(), "/metrics").body};
    {
      ws_client a(d.port());
      ws_client b(d.port());
      const auto src = a.handshake();
      const auto src_b = b.handshake();
      EXPECT_EQ(a.request(op_message("m", 0, 1, "create", {{"type", "text-unicode"}, {"data", "ab"}})),
                ack(src, 1, 0, "m"));
      EXPECT_EQ(a.request(op_message("m", 1, 2, "op", json::parse(R"([2,"c"])"))), ack(src, 2, 1, "m"));
      // An error reply (an op past the current version) counts under its code.
      EXPECT_TRUE(a.request(op_message("m", 7, 3, "op", json::parse(R"(["x"])"))).contains("error"));
      scrapes.push_back(http_get(d.port(), "/metrics").body);
      EXPECT_EQ(metric(scrapes.back(), "otsync_connections_open"), 2.0);
      EXPECT_GE(metric(scrapes.back(), "otsync_connections_total").value_or(0), 2.0);
      EXPECT_EQ(b.request(op_message("m", 2, 1, "op", json::parse(R"(["<"])"))), ack(src_b, 1, 2, "m"));
    }
    // The connections closed: the gauge falls back, the counters stay.
    std::optional<double> open;
    for (int i = 0; i < 200 && (open = metric(http_get(d.port(), "/metrics").body, "otsync_connections_open")) != 0.0;
         ++i) {
      std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(open, 0.0);
    scrapes.push_back(http_get(d.port(), "/metrics").body);
    EXPECT_GE(metric(scrapes.back(), "otsync_ops_committed_total").value_or(0), 3.0);
    if (store == "sqlite") {
      EXPECT_GE(metric(scrapes.back(), "otsync_store_commits_total").value_or(0), 3.0);
      EXPECT_GE(metric(scrapes.back(), "otsync_store_transactions_total").value_or(0), 1.0);
      EXPECT_EQ(metric(scrapes.back(), "otsync_store_failed_batches_total"), 0.0);
    }
    const auto check = check_metrics(dir_, scrapes);
    if (check.exit_code == 77) {
#ifdef OTSYNC_REQUIRE_ALL_TESTS
      FAIL() << check.output << " (required: built with OTSYNC_REQUIRE_ALL_TESTS)";
#else
      GTEST_SKIP() << check.output;
#endif
    }
    EXPECT_EQ(check.exit_code, 0) << check.output << scrapes.back();
    daemons_.clear();
  }
}

TEST_F(OtsyncdTest, ListenFromTheEnvironment) {
  auto& d = start({}, {{"OTSYNC_LISTEN", "127.0.0.1:0"}}, /*with_listen=*/false);
  EXPECT_NE(d.port(), 8080);
  ws_client c(d.port());
  EXPECT_EQ(c.request(json::parse(R"({"a":"pp"})")), json::parse(R"({"a":"pp"})"));
}

// A store that does not answer is in the log, with why, not only in /readyz: here a
// redis-cluster:// URI pointing at a Redis without cluster support.
TEST_F(OtsyncdTest, AStoreThatCannotServeIsLoggedWithWhy) {
  OTSYNC_REQUIRE_REDIS_SERVER();
  store::test::redis_server redis;
  ASSERT_EQ(redis.start(), "");
  auto& d = start({"--store", "redis-cluster://127.0.0.1:" + std::to_string(redis.port()), "--log-level", "info"});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (d.log().find("store_unavailable") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto log = d.log();
  EXPECT_NE(log.find("store_unavailable"), std::string::npos) << log;
  EXPECT_NE(log.find("cluster support disabled"), std::string::npos) << log;
  EXPECT_EQ(http_get(d.port(), "/readyz").status, 503U);
  EXPECT_EQ(log.find("store_available"), std::string::npos) << log;
}

TEST_F(OtsyncdTest, ARedisOutageIsLoggedWhenItBeginsAndWhenItEnds) {
  OTSYNC_REQUIRE_REDIS_SERVER();
  store::test::redis_server redis;
  ASSERT_EQ(redis.start(), "");
  auto& d = start({"--store", redis.uri(), "--log-level", "info"});
  const auto wait_for_log = [&](const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (d.log().find(what) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return d.log().find(what) != std::string::npos;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past the first check
  EXPECT_EQ(d.log().find("store_unavailable"), std::string::npos) << "a healthy start logs no outage:\n" << d.log();
  redis.stop();
  EXPECT_TRUE(wait_for_log("store_unavailable")) << d.log();
  ASSERT_EQ(redis.restart(), "");
  EXPECT_TRUE(wait_for_log("store_available")) << d.log();
  EXPECT_EQ(http_get(d.port(), "/readyz").status, 200U);
}

// The sharedb client never retries a subscription answered with an error: one made while Redis is
// down waits for it (--max-store-wait-ms) and is answered once Redis is back; a submit meanwhile is
// refused at once. A fetch that outwaits a short --max-store-wait-ms gets the error.
TEST_F(OtsyncdTest, ASubscriptionMadeWhileRedisIsDownIsAnsweredOnceItIsBack) {
  OTSYNC_REQUIRE_REDIS_SERVER();
  store::test::redis_server redis;
  ASSERT_EQ(redis.start(), "");
  auto& d = start({"--store", redis.uri(), "--log-level", "info"});
  auto& impatient = start({"--store", redis.uri(), "--max-store-wait-ms", "300"});
  ws_client writer(d.port());
  const auto src = writer.handshake();
  EXPECT_EQ(writer.request(op_message("d1", 0, 1, "create", {{"type", "text-unicode"}, {"data", "ab"}})),
            ack(src, 1, 0, "d1"));
  redis.stop();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (http_get(d.port(), "/readyz").status != 503U && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(http_get(d.port(), "/readyz").status, 503U);

  ws_client reader(d.port());
  reader.handshake();
  ASSERT_FALSE(reader.send(json::parse(R"({"a":"s","c":"docs","d":"d1","v":null})")));
  auto refused = writer.request(op_message("d1", 1, 2, "op", json::parse(R"([1,"x"])")));
  EXPECT_EQ(refused["error"]["code"], "ERR_DATABASE_UNAVAILABLE") << refused;
  std::this_thread::sleep_for(1500ms);  // several loads fail meanwhile (a timed-out read would end the stream)

  ws_client fetcher(impatient.port());
  fetcher.handshake();
  const auto asked = std::chrono::steady_clock::now();
  auto failed = fetcher.request(json::parse(R"({"a":"f","c":"docs","d":"d1","v":null})"));
  EXPECT_EQ(failed["error"]["code"], "ERR_DATABASE_UNAVAILABLE") << failed;
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 5s);

  ASSERT_EQ(redis.restart(), "");
  auto answer = reader.read(20s);  // the first frame: the subscription was not answered with an error
  ASSERT_TRUE(answer) << reader.error().message() << "\n" << d.log();
  EXPECT_EQ((*answer)["a"], "s") << *answer;
  EXPECT_EQ((*answer)["data"]["data"], "ab") << *answer;
  // Subscribed: the writer's next op reaches the reader.
  EXPECT_EQ(writer.request(op_message("d1", 1, 3, "op", json::parse(R"([2,"c"])"))), ack(src, 3, 1, "d1"));
  auto op = reader.read(10s);
  ASSERT_TRUE(op);
  EXPECT_EQ((*op)["a"], "op") << *op;
  EXPECT_EQ((*op)["v"], 1) << *op;
  const auto metrics = http_get(d.port(), "/metrics").body;
  EXPECT_EQ(metric(metrics, "otsync_reads_held_total{outcome=\"served\"}"), 1.0) << metrics;
  EXPECT_EQ(metric(http_get(impatient.port(), "/metrics").body, "otsync_reads_held_total{outcome=\"failed\"}"), 1.0);
}

// Two apps on one Redis: keys and channels carry --redis-prefix, so the
// instances of one app share documents and the other app sees none of them.
TEST_F(OtsyncdTest, RedisPrefixSeparatesAppsAndMetricsShowRedis) {
  OTSYNC_REQUIRE_REDIS_SERVER();
  store::test::redis_server redis;
  ASSERT_EQ(redis.start(), "");
  auto& app1 = start({"--store", redis.uri(), "--redis-prefix", "app1:"});
  auto& app1_again = start({"--store", redis.uri()}, {{"OTSYNC_REDIS_PREFIX", "app1:"}});
  auto& app2 = start({"--store", redis.uri(), "--redis-prefix", "app2:"});

  ws_client writer(app1.port());
  ws_client reader(app1_again.port());
  const auto src = writer.handshake();
  reader.handshake();
  EXPECT_EQ(writer.request(op_message("d1", 0, 1, "create", {{"type", "text-unicode"}, {"data", "ab"}})),
            ack(src, 1, 0, "d1"));
  // Each instance's SUBSCRIBE goes out on its feed's own thread: wait until Redis
  // confirmed it (a resync follows every confirmation) before publishing, or a
  // loaded machine lets the PUBLISH overtake it (the resync would still catch
  // the op up from the log, but not through the pub/sub path checked below).
  auto wait_subscribed = [&](std::uint16_t port) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (metric(http_get(port, "/metrics").body, "otsync_redis_feed_resyncs_total").value_or(0) < 1.0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
  };
  // The other instance of app1 follows the document over pub/sub.
  EXPECT_EQ(reader.request(json::parse(R"({"a":"s","c":"docs","d":"d1","v":null})"))["data"]["data"], "ab");
  wait_subscribed(app1_again.port());
  EXPECT_EQ(writer.request(json::parse(R"({"a":"s","c":"docs","d":"d1","v":1})")),
            json::parse(R"({"a":"s","c":"docs","d":"d1"})"));
  wait_subscribed(app1.port());
  EXPECT_EQ(writer.request(op_message("d1", 1, 2, "op", json::parse(R"([2,"c"])"))), ack(src, 2, 1, "d1"));
  auto broadcast = reader.read();
  ASSERT_TRUE(broadcast);
  EXPECT_EQ((*broadcast)["op"], json::parse(R"([2,"c"])"));

  auto keys = [&](const std::string& pattern) {
    auto reply = redis.command({"KEYS", pattern});
    std::set<std::string> out;
    if (reply) {
      for (const auto& e : reply->elements) out.insert(e.str);
    }
    return out;
  };
  EXPECT_TRUE(keys("app1:*").contains("app1:{4:docs/d1}:head"));
  EXPECT_TRUE(keys("app2:*").empty());
  EXPECT_TRUE(keys("otsync:*").empty());
  EXPECT_EQ(http_get(app2.port(), "/api/v1/docs/docs/d1").as_json(),
            json::parse(R"({"collection":"docs","id":"d1","v":0,"type":null})"));
  EXPECT_EQ(http_get(app1_again.port(), "/api/v1/docs/docs/d1").as_json()["data"], "abc");

  auto metrics = http_get(app1.port(), "/metrics").body;
  EXPECT_EQ(metric(metrics, "otsync_redis_up"), 1.0);
  EXPECT_EQ(metric(metrics, "otsync_redis_feed_up"), 1.0);
  EXPECT_GE(metric(metrics, "otsync_redis_commands_total").value_or(0), 2.0);
  EXPECT_EQ(metric(metrics, "otsync_redis_timeouts_total"), 0.0);
  EXPECT_GE(metric(http_get(app1_again.port(), "/metrics").body, "otsync_redis_feed_messages_total").value_or(0), 1.0);
  // The writer's instance is subscribed too: Redis echoes its own op back, and
  // it is skipped by its publisher tag, not decoded and delivered.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (metric(http_get(app1.port(), "/metrics").body, "otsync_redis_feed_own_skipped_total").value_or(0) < 1.0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  auto writer_metrics = http_get(app1.port(), "/metrics").body;
  EXPECT_GE(metric(writer_metrics, "otsync_redis_feed_own_skipped_total").value_or(0), 1.0);
  EXPECT_EQ(metric(writer_metrics, "otsync_redis_feed_messages_total"), 0.0);
  // With the Redis families too, the exposition follows the conventions (skipped
  // here without python3's prometheus_client: MetricsFollowPrometheusConventions reports that).
  const auto check = check_metrics(dir_, {metrics, writer_metrics});
  if (check.exit_code != 77) {
    EXPECT_EQ(check.exit_code, 0) << check.output << writer_metrics;
  }
  // An instance on SQLite shows no Redis metrics at all.
  auto& local = start();
  EXPECT_EQ(http_get(local.port(), "/metrics").body.find("otsync_redis"), std::string::npos);
}

TEST(OtsyncdCommandLine, Help) {
  auto r = run_command({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* flag : {"--listen", "--store", "--data-dir", "--max-message-bytes", "--max-send-queue",
                           "--print-config", "--log-level"}) {
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
  }
}

TEST(OtsyncdCommandLine, PrintConfig) {
  auto r = run_command({"--print-config", "--listen", "127.0.0.1:9999", "--store", "memory:"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* key : {"listen", "store", "data-dir", "max-message-bytes", "max-send-queue", "log-level"}) {
    EXPECT_NE(r.output.find(key), std::string::npos) << key << " in\n" << r.output;
  }
  EXPECT_NE(r.output.find("127.0.0.1:9999"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("memory:"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("print-config"), std::string::npos) << r.output;
  // The environment is reflected too.
  auto env = run_command({"--print-config"}, {{"OTSYNC_LISTEN", "127.0.0.1:7777"}});
  EXPECT_EQ(env.exit_code, 0);
  EXPECT_NE(env.output.find("127.0.0.1:7777"), std::string::npos) << env.output;
}

TEST(OtsyncdCommandLine, BadStoreExitsNonZeroWithAClearMessage) {
  auto dir = make_temp_dir();
  auto r = run_command({"--listen", "127.0.0.1:0", "--data-dir", dir.string(), "--store", "nosuch:"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, -1) << "did not exit: " << r.output;
  EXPECT_NE(r.output.find("nosuch"), std::string::npos) << r.output;
  auto bad_flag = run_command({"--no-such-flag"});
  EXPECT_NE(bad_flag.exit_code, 0);
  auto bad_listen = run_command({"--listen", "nowhere", "--data-dir", dir.string(), "--store", "memory:"});
  EXPECT_NE(bad_listen.exit_code, 0);
  EXPECT_NE(bad_listen.output.find("nowhere"), std::string::npos) << bad_listen.output;
  std::filesystem::remove_all(dir);
}

TEST(OtsyncdCommandLine, RefusesOutOfRangeLimitsNamingTheFlag) {
  // Past the documented bounds, negative, not a number, or through the environment: refused at
  // startup with the flag named, never a server with a hold of hours or a queue of nothing.
  const std::vector<std::vector<std::string>> bad = {
      {"--broadcast-coalesce-us", "100001"},
      {"--broadcast-coalesce-us", "-1"},
      {"--broadcast-coalesce-us", "5ms"},
      {"--broadcast-coalesce-load", "100.5"},
      {"--broadcast-coalesce-load", "-3"},
      {"--broadcast-coalesce-load", "nan"},
      {"--max-send-queue", "15"},
      {"--max-send-queue", "99999999999999999999"},
      {"--max-kept-presences", "-1"},
      {"--max-kept-presences", "1000001"},
      {"--max-kept-presences", "many"},
      {"--max-store-wait-ms", "-1"},
      {"--max-store-wait-ms", "600001"},
      {"--max-store-wait-ms", "30s"},
      {"--sqlite-checkpoint-pages", "0"},
      {"--sqlite-checkpoint-pages", "99"},
      {"--sqlite-checkpoint-pages", "1048577"},
      {"--sqlite-cache-mib", "0"},
      {"--sqlite-cache-mib", "65537"},
      {"--sqlite-cache-mib", "32M"},
  };
  for (const auto& args : bad) {
    auto all = args;
    all.insert(all.end(), {"--store", "memory:", "--listen", "127.0.0.1:0"});
    auto r = run_command(all);
    EXPECT_GT(r.exit_code, 0) << args[0] << " " << args[1] << ": " << r.output;
    EXPECT_NE(r.output.find(args[0]), std::string::npos) << args[0] << " " << args[1] << ": " << r.output;
  }
  auto env = run_command({"--store", "memory:", "--listen", "127.0.0.1:0"}, {{"OTSYNC_BROADCAST_COALESCE_US", "1e9"}});
  EXPECT_GT(env.exit_code, 0) << env.output;
}

}  // namespace
}  // namespace otsync
