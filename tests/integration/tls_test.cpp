// wss:// end to end, through each TLS front otsync ships: HAProxy (Debian's,
// with the shipped docker/haproxy.cfg) terminating TLS in front of a real
// otsyncd, and otsyncd's own listener (--tls-cert); a throwaway CA and
// certificates made by tests/support/make_test_certs.sh (the openssl CLI).
// The native client edits over wss:// and converges with a fresh fetch, and
// reconnects and resends when the front is killed and restarted; a certificate
// for another name, an expired one and one from an unknown CA are each
// refused with the reason in the error; skipping verification (tests only)
// connects anyway; otsync-load runs over wss://. otsyncd's listener re-reads
// its certificate on SIGHUP while clients type, dropping none and losing no
// edit; a failed reload keeps the certificate. Processes on free loopback
// ports in a temp dir, stopped by PID; every wait is bounded.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "otsync/auth/base64url.hpp"
#include "otsync/client/connection.hpp"
#include "otsync/ot/unicode.hpp"
#include "support/process.hpp"
#include "support/server_process.hpp"

namespace {

using namespace std::chrono_literals;
using otsync::client::connection;
using otsync::client::connection_options;
using otsync::test::server_process;
namespace fs = std::filesystem;

/// A port nothing listens on right now (the kernel's pick, released).
unsigned free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof addr;
  sockaddr* any = reinterpret_cast<sockaddr*>(&addr);
  if (::bind(fd, any, sizeof addr) != 0 || ::getsockname(fd, any, &length) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool accepts_connections(unsigned port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

/// HAProxy with docker/haproxy.cfg terminating TLS with `cert` on a free
/// port, every server slot pointing at one otsyncd.
class haproxy_process {
 public:
  haproxy_process(const fs::path& dir, const fs::path& cert, unsigned backend_port) : dir_(dir), port_(free_port()) {
    const std::string backend = "127.0.0.1:" + std::to_string(backend_port);
    env_ = {{"HAPROXY_BIND", "127.0.0.1:" + std::to_string(port_)},
            {"HAPROXY_TLS_CERT", cert.string()},
            {"OTSYNC1", backend},
            {"OTSYNC2", backend},
            {"OTSYNC3", backend}};
    start();
  }
  ~haproxy_process() { stop(SIGTERM); }
  haproxy_process(const haproxy_process&) = delete;
  haproxy_process& operator=(const haproxy_process&) = delete;

  /// Starts it again on the same port.
  void start() {
    pid_ = otsync::test::spawn_process(
        {OTSYNC_HAPROXY_PATH, "-f", (fs::path(OTSYNC_SOURCE_DIR) / "docker" / "haproxy.cfg").string()},
        {dir_ / "haproxy.log", {}, env_, true});
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!accepts_connections(port_)) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("haproxy exited: " + otsync::test::read_file(dir_ / "haproxy.log"));
      }
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("haproxy did not listen");
      std::this_thread::sleep_for(10ms);
    }
  }
  /// SIGKILL: every connection through it drops at once, without a TLS close.
  void kill_hard() { stop(SIGKILL); }

  [[nodiscard]] std::string url(const std::string& host = "127.0.0.1") const {
    return "wss://" + host + ":" + std::to_string(port_) + "/ws";
  }

 private:
  void stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    if (!otsync::test::wait_exit(pid_, 10s)) {
      ::kill(pid_, SIGKILL);
      otsync::test::wait_exit(pid_, 5s);
    }
    pid_ = -1;
  }

  fs::path dir_;
  unsigned port_;
  std::map<std::string, std::string> env_;
  pid_t pid_ = -1;
};

/// Where clients reach otsync over TLS.
class tls_front {
 public:
  virtual ~tls_front() = default;
  [[nodiscard]] virtual std::string url(const std::string& host = "127.0.0.1") const = 0;
  /// SIGKILL: every connection drops at once, without a TLS close.
  virtual void kill_hard() = 0;
  /// Starts it again on the same port.
  virtual void start() = 0;
};

class haproxy_front final : public tls_front {
 public:
  haproxy_front(const fs::path& dir, const fs::path& cert, unsigned backend_port) : proxy_(dir, cert, backend_port) {}
  [[nodiscard]] std::string url(const std::string& host) const override { return proxy_.url(host); }
  void kill_hard() override { proxy_.kill_hard(); }
  void start() override { proxy_.start(); }

 private:
  haproxy_process proxy_;
};

/// otsyncd's own listener (--tls-cert) on SQLite, so that a restart keeps what was acknowledged.
class otsyncd_front final : public tls_front {
 public:
  otsyncd_front(const fs::path& data_dir, const fs::path& cert, std::vector<std::string> extra = {},
                const std::string& log_level = "warn")
      : server_(args(data_dir, cert, std::move(extra), log_level)) {}
  [[nodiscard]] std::string url(const std::string& host) const override {
    return "wss://" + host + ":" + std::to_string(server_.port()) + "/ws";
  }
  void kill_hard() override { server_.kill_hard(); }
  void start() override { server_.restart(); }
  [[nodiscard]] server_process& server() { return server_; }

 private:
  static std::vector<std::string> args(const fs::path& data_dir, const fs::path& cert, std::vector<std::string> extra,
                                       const std::string& log_level) {
    fs::create_directories(data_dir);
    std::vector<std::string> a{OTSYNCD_PATH,  "--store", "sqlite:tls.db", "--data-dir", data_dir.string(),
                               "--log-level", log_level, "--tls-cert",    cert.string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  server_process server_;
};

enum class front_kind { haproxy, otsyncd };

/// The connection's errors, for waiting on one.
class error_log {
 public:
  void attach(connection_options& o) {
    o.on_error = [this](const otsync::client::client_error& e) {
      std::lock_guard lock(mutex_);
      messages_.push_back(e.message);
    };
  }
  /// Waits (bounded) for an error containing `part`; every message so far when none does.
  std::string wait_for(const std::string& part, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      {
        std::lock_guard lock(mutex_);
        for (const auto& m : messages_)
          if (m.find(part) != std::string::npos) return m;
        if (std::chrono::steady_clock::now() > deadline) {
          std::string all = "no error containing \"" + part + "\"; errors:";
          for (const auto& m : messages_) all += "\n  " + m;
          throw std::runtime_error(all);
        }
      }
      std::this_thread::sleep_for(10ms);
    }
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> messages_;
};

class Tls : public ::testing::TestWithParam<front_kind> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(otsync::test::make_temp_dir("otsync-tls-test"));
    const std::string make = (fs::path(OTSYNC_SOURCE_DIR) / "tests" / "support" / "make_test_certs.sh").string();
    const pid_t pid = otsync::test::spawn_process({"/bin/bash", make, (*dir_ / "certs").string()},
                                                  {*dir_ / "make_test_certs.log", {}, {}, false});
    const auto status = otsync::test::wait_exit(pid, 60s);
    if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0)
      throw std::runtime_error("make_test_certs.sh failed: " + otsync::test::read_file(*dir_ / "make_test_certs.log"));
    server_ = new server_process({OTSYNCD_PATH, "--store", "memory:", "--log-level", "warn"});
  }
  static void TearDownTestSuite() {
    delete server_;
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }
  void SetUp() override {
    if (GetParam() == front_kind::haproxy && std::string(OTSYNC_HAPROXY_PATH).empty()) {
#ifdef OTSYNC_REQUIRE_ALL_TESTS
      FAIL() << "haproxy not found (Debian package haproxy)";
#else
      GTEST_SKIP() << "haproxy not found (Debian package haproxy)";
#endif
    }
  }

  static fs::path cert(const std::string& name) {
    return *dir_ / "certs" / name;
  }
  /// The front under test, serving `cert_name`, in front of the shared otsyncd (HAProxy) or as its
  /// own server (otsyncd's listener, with `extra` flags).
  std::unique_ptr<tls_front> front(const std::string& cert_name, std::vector<std::string> extra = {}) {
    if (GetParam() == front_kind::haproxy) {
      return std::make_unique<haproxy_front>(*dir_, cert(cert_name), server_->port());
    }
    return std::make_unique<otsyncd_front>(*dir_ / ("otsyncd-" + std::to_string(++fronts_)), cert(cert_name),
                                           std::move(extra));
  }
  /// Options trusting the test CA (only it: not the system store).
  static connection_options trusting_ca(const std::string& url) {
    connection_options o;
    o.url = url;
    o.tls_ca_file = cert("ca.pem");
    o.reconnect_min = 20ms;
    o.reconnect_max = 300ms;
    return o;
  }
  /// Connecting to `url` with `o` is refused, and an error says why (contains `reason`).
  static void expect_refused(connection_options o, const std::string& reason) {
    error_log errors;
    errors.attach(o);
    connection c(o);
    std::string message;
    ASSERT_NO_THROW(message = errors.wait_for(reason, 10s));
    EXPECT_NE(message.find("TLS handshake"), std::string::npos) << message;
    EXPECT_FALSE(c.wait_connected(200ms)) << "connected despite: " << message;
  }

  static fs::path* dir_;
  static server_process* server_;
  static inline int fronts_ = 0;
};

fs::path* Tls::dir_ = nullptr;
server_process* Tls::server_ = nullptr;

TEST_P(Tls, ConcurrentEditorsOverWssConvergeWithAFreshFetch) {
  auto proxy = front("server.pem");
  constexpr int editors = 3;
  constexpr int edits_each = 100;
  std::vector<std::unique_ptr<connection>> connections;
  std::vector<std::shared_ptr<otsync::client::document>> docs;
  for (int i = 0; i < editors; ++i) {
    // By IP address and by DNS name: the certificate's two SANs.
    connections.push_back(std::make_unique<connection>(trusting_ca(proxy->url(i == 0 ? "localhost" : "127.0.0.1"))));
    docs.push_back(connections.back()->open("docs", "tls-converge", std::string("start")));
  }
  for (auto& d : docs) ASSERT_TRUE(d->wait_synchronised(20s));
  std::vector<std::thread> threads;
  for (int i = 0; i < editors; ++i) {
    threads.emplace_back([&, i] {
      auto& doc = *docs[static_cast<std::size_t>(i)];
      std::mt19937 rng(static_cast<unsigned>(99 + i));
      for (int n = 0; n < edits_each; ++n) {
        auto length = otsync::ot::unicode::count_code_points(doc.text());
        auto pos = std::uniform_int_distribution<std::size_t>(0, length)(rng);
        // A remote op may shorten the text between the read and the edit: then the edit is refused whole.
        if (length > 10 && rng() % 3 == 0) {
          (void)doc.erase(pos == length ? pos - 1 : pos, 1);
        } else {
          (void)doc.insert(pos, n % 7 == 0 ? "é😀" : "ab");
        }
        std::this_thread::sleep_for(1ms);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& d : docs) ASSERT_TRUE(d->wait_synchronised(30s));
  connection reader(trusting_ca(proxy->url()));
  auto fresh = reader.open("docs", "tls-converge");
  ASSERT_TRUE(fresh->wait_synchronised(20s));
  for (auto& d : docs) {
    // Synchronised means our ops are acked; other editors' last ops may still be on their way.
    for (int i = 0; i < 200 && d->version() != fresh->version(); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(d->version(), fresh->version());
    EXPECT_EQ(d->text(), fresh->text());
  }
  // Edits made while one is in flight are composed into one op, so fewer versions than edits; on
  // SQLite (otsyncd's own listener here) acks wait for a commit, and more are composed.
  EXPECT_GT(fresh->version(), 10U);
  EXPECT_GE(otsync::ot::unicode::count_code_points(fresh->text()), 100U);  // most edits insert
}

TEST_P(Tls, AKilledProxyMeansReconnectAndResendWithEveryEditOnce) {
  auto proxy = front("server.pem");
  auto o = trusting_ca(proxy->url());
  error_log errors;
  errors.attach(o);
  connection client(o);
  auto doc = client.open("docs", "tls-drop", std::string());
  ASSERT_TRUE(doc->wait_synchronised(20s));
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    if (i == 60) proxy->kill_hard();  // ops in flight over TLS are lost with it
    if (i == 100) proxy->start();
    const std::string token = "<" + std::to_string(i) + ">";
    ASSERT_FALSE(doc->insert(otsync::ot::unicode::count_code_points(doc->text()), token));
    expected += token;
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_TRUE(doc->wait_synchronised(30s));
  EXPECT_EQ(doc->text(), expected);
  EXPECT_GE(client.reconnects(), 1U);
  EXPECT_NO_THROW(errors.wait_for("connection lost", 1s));  // the drop was seen as one, over TLS
  connection reader(trusting_ca(proxy->url()));
  auto fresh = reader.open("docs", "tls-drop");
  ASSERT_TRUE(fresh->wait_synchronised(20s));
  EXPECT_EQ(fresh->text(), expected);  // every token once, in order
  EXPECT_EQ(fresh->version(), doc->version());
}

TEST_P(Tls, ACertificateForAnotherHostNameIsRefused) {
  // DNS name checked: the certificate names 127.0.0.1 only.
  auto ip_only = front("ip-only.pem");
  expect_refused(trusting_ca(ip_only->url("localhost")), "hostname mismatch");
  // IP address checked: the certificate names localhost only.
  auto dns_only = front("dns-only.pem");
  expect_refused(trusting_ca(dns_only->url("127.0.0.1")), "IP address mismatch");
}

TEST_P(Tls, AnExpiredCertificateIsRefused) {
  auto proxy = front("expired.pem");
  expect_refused(trusting_ca(proxy->url()), "certificate has expired");
}

TEST_P(Tls, ACertificateFromAnUnknownCaIsRefused) {
  auto proxy = front("unknown-ca.pem");
  expect_refused(trusting_ca(proxy->url()), "unable to get local issuer certificate");
  // Without tls_ca_file the system's store is used, and it does not know the test CA either.
  auto good = front("server.pem");
  connection_options o;
  o.url = good->url();
  expect_refused(o, "unable to get local issuer certificate");
}

TEST_P(Tls, SkippingVerificationConnectsDespiteEachProblem) {
  for (const auto& [name, host] : std::vector<std::pair<std::string, std::string>>{
           {"ip-only.pem", "localhost"}, {"expired.pem", "127.0.0.1"}, {"unknown-ca.pem", "127.0.0.1"}}) {
    SCOPED_TRACE(name);
    auto proxy = front(name);
    connection_options o;
    o.url = proxy->url(host);
    o.tls_insecure_skip_verify_for_tests_only = true;
    connection c(o);
    auto doc = c.open("docs", "tls-insecure-" + name, std::string("x"));
    ASSERT_TRUE(doc->wait_synchronised(20s));
    ASSERT_FALSE(doc->insert(1, "y"));
    EXPECT_TRUE(doc->wait_synchronised(20s));
    EXPECT_EQ(doc->text(), "xy");
  }
}

TEST_P(Tls, WssToAPlainServerOrABadCaFileFailsClearly) {
  connection_options o;
  o.url = "wss://127.0.0.1:" + std::to_string(server_->port()) + "/ws";
  o.tls_insecure_skip_verify_for_tests_only = true;
  expect_refused(o, "wrong version number");  // otsyncd answered HTTP, not TLS
  if (GetParam() == front_kind::otsyncd) {
    // ws:// to the TLS listener: refused (the upgrade request is no TLS handshake), and it serves on.
    auto own = front("server.pem");
    auto url = own->url();
    connection_options plain;
    plain.url = "ws://" + url.substr(std::string("wss://").size());
    error_log errors;
    errors.attach(plain);
    {
      connection c(plain);
      EXPECT_NO_THROW(errors.wait_for("declined", 10s));  // a 400 (ERR_TLS_REQUIRED), not a reset
      EXPECT_FALSE(c.wait_connected(200ms));
    }
    connection good(trusting_ca(url));
    EXPECT_TRUE(good.wait_connected(10s));
  }
  auto missing = trusting_ca("wss://127.0.0.1:1/ws");
  missing.tls_ca_file = *dir_ / "no-such-ca.pem";
  try {
    connection c(missing);
    ADD_FAILURE() << "a CA file that does not exist was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-ca.pem"), std::string::npos) << e.what();
  }
}

// An HS256 JWT granting `write` on every document for `ttl` (as in client_test.cpp).
std::string hs256_token(const std::string& secret, std::chrono::seconds ttl) {
  const auto exp =
      std::chrono::duration_cast<std::chrono::seconds>((std::chrono::system_clock::now() + ttl).time_since_epoch())
          .count();
  const std::string header = otsync::auth::base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  const std::string claims =
      otsync::auth::base64url_encode(R"({"sub":"tls","exp":)" + std::to_string(exp) + R"(,"otsync":{"write":["*"]}})");
  const std::string input = header + "." + claims;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &length);
  return input + "." + otsync::auth::base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), length));
}

// The token goes on every upgrade inside TLS; when it expires the server's
// close (4001) comes through HAProxy's TLS, and the reconnect asks for a fresh one.
TEST_P(Tls, TheBearerTokenTravelsInsideTlsAndIsRenewedAfterA4001) {
  const std::string secret(40, 't');
  const auto secret_file = *dir_ / "jwt-secret";
  std::ofstream(secret_file) << secret;
  const std::vector<std::string> auth_flags{
      "--auth", "jwt", "--jwt-secret-file", secret_file.string(), "--jwt-clock-skew-s", "0"};
  std::unique_ptr<server_process> authenticated;
  std::unique_ptr<tls_front> proxy;
  if (GetParam() == front_kind::haproxy) {
    std::vector<std::string> args{OTSYNCD_PATH, "--store", "memory:", "--log-level", "warn"};
    args.insert(args.end(), auth_flags.begin(), auth_flags.end());
    authenticated = std::make_unique<server_process>(args);
    proxy = std::make_unique<haproxy_front>(*dir_, cert("server.pem"), authenticated->port());
  } else {
    proxy = front("server.pem", auth_flags);
  }
  auto o = trusting_ca(proxy->url());
  std::atomic<int> tokens{0};
  o.token_provider = [&] {
    ++tokens;
    return hs256_token(secret, 2s);
  };
  error_log expiry;
  expiry.attach(o);
  connection with_token(o);
  auto doc = with_token.open("docs", "tls-token", std::string("ok"));
  ASSERT_TRUE(doc->wait_synchronised(20s));
  ASSERT_NO_THROW(expiry.wait_for("closed by the server: 4001", 10s));
  ASSERT_FALSE(doc->insert(2, "!"));
  EXPECT_TRUE(doc->wait_synchronised(20s));
  EXPECT_GE(tokens.load(), 2);
  EXPECT_GE(with_token.reconnects(), 1U);
  EXPECT_EQ(doc->text(), "ok!");

  auto anonymous = trusting_ca(proxy->url());
  error_log errors;
  errors.attach(anonymous);
  connection without(anonymous);
  EXPECT_NO_THROW(errors.wait_for("WebSocket upgrade", 10s));  // TLS was fine; the server said no
  EXPECT_FALSE(without.wait_connected(200ms));
}

// otsync-load over wss://: a short contention run converges with acks and no
// errors; a certificate it must not trust stops it with the reason.
struct load_result {
  int exit_code = -1;
  std::string stderr_text;
  nlohmann::json report;
};

load_result run_load(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), OTSYNC_LOAD_PATH);
  args.insert(args.end(), {"--quiet", "--json", (dir / "report.json").string()});
  fs::remove(dir / "report.json");
  const pid_t pid = otsync::test::spawn_process(args, {dir / "load.out", dir / "load.err", {}, false});
  const auto status = otsync::test::wait_exit(pid, 60s);
  if (!status) {
    ::kill(pid, SIGKILL);
    otsync::test::wait_exit(pid, 5s);
  }
  load_result r;
  if (status && WIFEXITED(*status)) r.exit_code = WEXITSTATUS(*status);
  r.stderr_text = otsync::test::read_file(dir / "load.err");
  r.report = nlohmann::json::parse(otsync::test::read_file(dir / "report.json"), nullptr, false);
  return r;
}

TEST_P(Tls, OtsyncLoadOverWss) {
  auto proxy = front("server.pem");
  auto r = run_load(
      *dir_, {"--preset", "contention", "--writers", "8", "--duration", "2", "--warmup", "0.3", "--timeout", "15",
              "--url", proxy->url(), "--tls-ca-file", cert("ca.pem").string(), "--pid",
              std::to_string(GetParam() == front_kind::haproxy ? server_->pid()
                                                               : static_cast<otsyncd_front&>(*proxy).server().pid())});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  ASSERT_TRUE(r.report.is_object()) << r.stderr_text;
  SCOPED_TRACE(r.report.dump(2));
  EXPECT_GT(r.report.at("acked_ops").get<std::uint64_t>(), 0U);
  EXPECT_TRUE(r.report.at("errors").empty());
  EXPECT_EQ(r.report.at("disconnects"), 0);
  EXPECT_TRUE(r.report.at("converged").get<bool>());

  auto expired = front("expired.pem");
  auto refused = run_load(*dir_, {"--writers", "2", "--duration", "0.5", "--timeout", "5", "--url", expired->url(),
                                  "--tls-ca-file", cert("ca.pem").string()});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.stderr_text.find("certificate has expired"), std::string::npos) << refused.stderr_text;
  auto skipped = run_load(*dir_, {"--writers", "2", "--duration", "0.5", "--warmup", "0", "--timeout", "10", "--url",
                                  expired->url(), "--tls-insecure-skip-verify"});
  EXPECT_EQ(skipped.exit_code, 0) << skipped.stderr_text;
  EXPECT_GT(skipped.report.value("acked_ops", std::uint64_t{0}), 0U);
}

// otsyncd's own listener: SIGHUP while three clients type. The certificate
// changes under them to one for 127.0.0.1 only (so a new connection to
// localhost is refused: the new certificate is served), none of them is
// dropped, every edit is in the document once; a reload from a broken file
// keeps the certificate; a reload back to the first one lets localhost in again.
class TlsOwnListener : public Tls {};

TEST_P(TlsOwnListener, ACertificateReloadUnderLoadDropsNothingAndLosesNoEdit) {
  const auto live = *dir_ / "live-cert.pem";
  fs::copy_file(cert("server.pem"), live, fs::copy_options::overwrite_existing);
  otsyncd_front own(*dir_ / "otsyncd-reload", live, {}, "info");
  auto replace_cert = [&](const std::string& content) {
    const auto tmp = *dir_ / "live-cert.pem.tmp";
    std::ofstream(tmp, std::ios::trunc) << content;
    fs::rename(tmp, live);  // as certbot's deploy hooks do: the new file appears whole
    // Reloads are logged (info): wait for this one, so that what follows sees its outcome.
    auto reloads = [&] {
      const auto log = own.server().log();
      std::size_t count = 0;
      for (auto at = log.find("tls_reload"); at != std::string::npos; at = log.find("tls_reload", at + 1)) ++count;
      return count;
    };
    const auto before = reloads();
    own.server().signal(SIGHUP);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (reloads() == before && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    ASSERT_GT(reloads(), before) << "no reload logged";
  };
  constexpr int editors = 3;
  std::vector<std::unique_ptr<connection>> connections;
  std::vector<std::shared_ptr<otsync::client::document>> docs;
  for (int i = 0; i < editors; ++i) {
    connections.push_back(std::make_unique<connection>(trusting_ca(own.url("localhost"))));
    docs.push_back(connections.back()->open("docs", "tls-reload", std::string()));
  }
  for (auto& d : docs) ASSERT_TRUE(d->wait_synchronised(20s));
  std::atomic<bool> typing{true};
  std::vector<std::string> typed(editors);
  std::vector<std::thread> threads;
  for (int i = 0; i < editors; ++i) {
    threads.emplace_back([&, i] {
      auto& doc = *docs[static_cast<std::size_t>(i)];
      for (int n = 0; n < 400 && typing; ++n) {
        const std::string token = "<" + std::to_string(i) + ":" + std::to_string(n) + ">";
        if (doc.insert(0, token)) break;
        typed[static_cast<std::size_t>(i)] += token;
        std::this_thread::sleep_for(3ms);
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  replace_cert(otsync::test::read_file(cert("ip-only.pem")));
  expect_refused(trusting_ca(own.url("localhost")), "hostname mismatch");
  {
    connection by_ip(trusting_ca(own.url("127.0.0.1")));
    EXPECT_TRUE(by_ip.wait_connected(10s));
  }
  replace_cert("not a certificate\n");
  expect_refused(trusting_ca(own.url("localhost")), "hostname mismatch");  // still the ip-only one
  replace_cert(otsync::test::read_file(cert("server.pem")));
  {
    connection by_name(trusting_ca(own.url("localhost")));
    EXPECT_TRUE(by_name.wait_connected(10s));
  }
  typing = false;
  for (auto& t : threads) t.join();
  for (auto& d : docs) ASSERT_TRUE(d->wait_synchronised(30s));
  for (auto& c : connections) EXPECT_EQ(c->reconnects(), 0U) << "a reload dropped a connection";
  connection reader(trusting_ca(own.url("localhost")));
  auto fresh = reader.open("docs", "tls-reload");
  ASSERT_TRUE(fresh->wait_synchronised(20s));
  std::size_t total = 0;
  for (const auto& mine : typed) {
    total += mine.size();
    // Each editor's tokens, every one once (others' inserts go before or between them, never inside).
    for (std::size_t at = 0; at < mine.size();) {
      const auto end = mine.find('>', at) + 1;
      const auto token = mine.substr(at, end - at);
      const auto first = fresh->text().find(token);
      EXPECT_NE(first, std::string::npos) << token << " lost";
      EXPECT_EQ(fresh->text().find(token, first + 1), std::string::npos) << token << " twice";
      at = end;
    }
  }
  EXPECT_EQ(fresh->text().size(), total);
  EXPECT_GT(total, 0U);
  for (auto& d : docs) {
    for (int i = 0; i < 200 && d->version() != fresh->version(); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(d->text(), fresh->text());
  }
  const auto log = own.server().log();
  EXPECT_NE(log.find("tls_reload_failed"), std::string::npos) << log;
}

INSTANTIATE_TEST_SUITE_P(Otsyncd, TlsOwnListener, ::testing::Values(front_kind::otsyncd));
INSTANTIATE_TEST_SUITE_P(Fronts, Tls, ::testing::Values(front_kind::haproxy, front_kind::otsyncd),
                         [](const ::testing::TestParamInfo<front_kind>& param) {
                           return param.param == front_kind::haproxy ? std::string("HAProxy")
                                                                     : std::string("OwnListener");
                         });

}  // namespace
