// The native client library against a real otsyncd (random loopback port,
// temp dir, stopped by PID): concurrent editors converge; a server crash and
// restart loses no edit and applies none twice; unsent edits survive a
// restart of the client program through the offline queue, and an op sent
// just before the program stopped is committed once when resent.
#include <gtest/gtest.h>

#include <signal.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "otsync/auth/identity.hpp"
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

connection_options options_for(const server_process& server, const fs::path& offline_dir = {}) {
  connection_options o;
  o.url = server.url();
  o.reconnect_min = 20ms;
  o.reconnect_max = 300ms;
  o.offline_dir = offline_dir;
  return o;
}

/// The text a fresh connection loads.
std::string fresh_text(const server_process& server, const std::string& id, std::uint64_t* version = nullptr) {
  connection reader(options_for(server));
  auto doc = reader.open("docs", id);
  EXPECT_TRUE(doc->wait_synchronised(20s));
  if (version != nullptr) *version = doc->version();
  return doc->text();
}

class ClientIntegration : public ::testing::Test {
 protected:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::vector<std::string> sqlite_server_args() const {
    return {OTSYNCD_PATH, "--store", "sqlite:" + (dir_ / "otsync.db").string(), "--log-level", "warn"};
  }
  fs::path dir_ = otsync::test::make_temp_dir("otsync-client-test");
};

TEST_F(ClientIntegration, ConcurrentEditorsConvergeWithAFreshFetch) {
  server_process server({OTSYNCD_PATH, "--store", "memory:", "--log-level", "warn"});
  constexpr int editors = 3;
  constexpr int edits_each = 150;
  std::vector<std::unique_ptr<connection>> connections;
  std::vector<std::shared_ptr<otsync::client::document>> docs;
  for (int i = 0; i < editors; ++i) {
    connections.push_back(std::make_unique<connection>(options_for(server)));
    docs.push_back(connections.back()->open("docs", "converge", std::string("start")));
  }
  for (auto& d : docs) ASSERT_TRUE(d->wait_synchronised(20s));
  std::vector<std::thread> threads;
  for (int i = 0; i < editors; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 rng(static_cast<unsigned>(1234 + i));
      for (int n = 0; n < edits_each; ++n) {
        auto length = otsync::ot::unicode::count_code_points(docs[static_cast<std::size_t>(i)]->text());
        auto pos = std::uniform_int_distribution<std::size_t>(0, length)(rng);
        std::error_code error;
        if (length > 10 && rng() % 3 == 0) {
          error = docs[static_cast<std::size_t>(i)]->erase(pos == length ? pos - 1 : pos, 1);
        } else {
          error = docs[static_cast<std::size_t>(i)]->insert(pos, n % 7 == 0 ? "é😀" : "ab");
        }
        // A remote op may shorten the text between the read and the edit: then the edit is refused whole.
        (void)error;
        std::this_thread::sleep_for(1ms);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& d : docs) ASSERT_TRUE(d->wait_synchronised(30s));
  std::uint64_t version = 0;
  std::string expected = fresh_text(server, "converge", &version);
  for (auto& d : docs) {
    // Synchronised means our ops are acked; other editors' last ops may still be on their way.
    for (int i = 0; i < 200 && d->version() != version; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(d->version(), version);
    EXPECT_EQ(d->text(), expected);
  }
  EXPECT_GT(version, 100U);
}

TEST_F(ClientIntegration, ServerCrashAndRestartLoseNothingAndApplyNothingTwice) {
  server_process server(sqlite_server_args());
  connection client(options_for(server));
  auto doc = client.open("docs", "crash", std::string());
  ASSERT_TRUE(doc->wait_synchronised(20s));
  std::string expected;
  constexpr int tokens = 300;
  for (int i = 0; i < tokens; ++i) {
    if (i == 100) server.kill_hard();
    if (i == 160) server.restart();
    std::string token = "<" + std::to_string(i) + ">";
    auto end = otsync::ot::unicode::count_code_points(doc->text());
    ASSERT_FALSE(doc->insert(end, token));
    expected += token;
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_TRUE(doc->wait_synchronised(30s)) << server.log();
  EXPECT_EQ(doc->text(), expected);
  EXPECT_GE(client.reconnects(), 1U);
  std::uint64_t version = 0;
  EXPECT_EQ(fresh_text(server, "crash", &version), expected);  // every token once, in order
  EXPECT_EQ(version, doc->version());
}

TEST_F(ClientIntegration, OfflineEditsSurviveARestartOfTheClientProgram) {
  server_process server(sqlite_server_args());
  auto offline = dir_ / "offline";
  {
    connection first(options_for(server, offline));
    auto doc = first.open("docs", "offline", std::string("base"));
    ASSERT_TRUE(doc->wait_synchronised(20s));
    server.stop();
    ASSERT_FALSE(doc->insert(4, " one"));
    ASSERT_FALSE(doc->insert(8, " two 😀"));
    EXPECT_EQ(doc->text(), "base one two 😀");
    EXPECT_FALSE(doc->synchronised());
  }  // the program ends with both edits unsent
  server.restart();
  connection second(options_for(server, offline));
  auto doc = second.open("docs", "offline");
  EXPECT_TRUE(doc->loaded());  // from disk, before the server answered
  EXPECT_EQ(doc->text(), "base one two 😀");
  ASSERT_TRUE(doc->wait_synchronised(20s)) << server.log();
  std::uint64_t version = 0;
  EXPECT_EQ(fresh_text(server, "offline", &version), "base one two 😀");
  EXPECT_EQ(version, doc->version());
}

TEST_F(ClientIntegration, AnOpSentJustBeforeTheProgramStoppedIsCommittedOnce) {
  server_process server(sqlite_server_args());
  auto offline = dir_ / "offline";
  {
    connection first(options_for(server, offline));
    auto doc = first.open("docs", "resend", std::string("base"));
    ASSERT_TRUE(doc->wait_synchronised(20s));
    server.signal(SIGSTOP);  // the op reaches the server's socket, the ack never comes back
    ASSERT_FALSE(doc->insert(4, "X"));
    std::this_thread::sleep_for(200ms);
    EXPECT_FALSE(doc->synchronised());
  }
  server.signal(SIGCONT);  // the server reads the op (and commits it) after the client is gone
  std::this_thread::sleep_for(300ms);
  connection second(options_for(server, offline));
  auto doc = second.open("docs", "resend");
  ASSERT_TRUE(doc->wait_synchronised(20s)) << server.log();
  EXPECT_EQ(doc->text(), "baseX");
  std::uint64_t version = 0;
  EXPECT_EQ(fresh_text(server, "resend", &version), "baseX");
  EXPECT_EQ(version, 2U);  // the create and one op: the resend was recognised
}

TEST_F(ClientIntegration, ABadUrlIsRefusedAndAnUnreachableServerIsRetried) {
  connection_options bad;
  bad.url = "http://x";
  EXPECT_THROW(connection{bad}, std::invalid_argument);
  // A server that is not there yet: the client keeps trying and connects once it is.
  server_process server(sqlite_server_args());
  auto url = server.url();
  server.stop();
  connection client(options_for(server));
  auto doc = client.open("docs", "late", std::string("hello"));
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(client.wait_connected(10ms));
  server.restart();
  ASSERT_TRUE(doc->wait_synchronised(20s));
  EXPECT_EQ(doc->text(), "hello");
  EXPECT_EQ(url, server.url());
}

}  // namespace

namespace {

// An HS256 JWT signed here (OpenSSL), granting `write` on every document, expiring in `ttl`.
std::string hs256_token(const std::string& secret, std::chrono::seconds ttl) {
  const auto exp =
      std::chrono::duration_cast<std::chrono::seconds>((std::chrono::system_clock::now() + ttl).time_since_epoch())
          .count();
  const std::string header = otsync::auth::base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  const std::string claims = otsync::auth::base64url_encode(R"({"sub":"typist","exp":)" + std::to_string(exp) +
                                                            R"(,"otsync":{"write":["*"]}})");
  const std::string input = header + "." + claims;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &length);
  return input + "." + otsync::auth::base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), length));
}

}  // namespace

// --auth jwt: the client sends the provider's token on every upgrade; when the
// server closes the connection because the token expired (4001), the client
// reconnects with a fresh one, and no edit is lost or applied twice.
TEST_F(ClientIntegration, TheTokenProviderIsAskedAgainAfterTheTokenExpires) {
  const std::string secret(40, 's');
  const auto secret_file = dir_ / "jwt-secret";
  { std::ofstream(secret_file) << secret; }
  server_process server({OTSYNCD_PATH, "--store", "memory:", "--log-level", "warn", "--auth", "jwt",
                         "--jwt-secret-file", secret_file.string(), "--jwt-clock-skew-s", "0"});
  std::atomic<int> tokens{0};
  auto o = options_for(server);
  o.token_provider = [&] {
    ++tokens;
    return hs256_token(secret, 2s);
  };
  std::vector<std::string> errors;
  std::mutex errors_mutex;
  o.on_error = [&](const otsync::client::client_error& e) {
    std::lock_guard lock(errors_mutex);
    errors.push_back(e.message);
  };
  connection c(o);
  auto doc = c.open("docs", "token", std::string(""));
  ASSERT_TRUE(doc->wait_synchronised(20s));
  std::string expected;
  // Type until two expiries have passed (each token lives 1-2 s; bounded for a slow build).
  const auto until = std::chrono::steady_clock::now() + 30s;
  for (int n = 0; c.reconnects() < 2 && std::chrono::steady_clock::now() < until; ++n) {
    const std::string piece = std::to_string(n % 10);
    ASSERT_FALSE(doc->insert(otsync::ot::unicode::count_code_points(doc->text()), piece));
    expected += piece;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(doc->wait_synchronised(20s));
  EXPECT_GE(tokens.load(), 3) << "a fresh token for each reconnect after an expiry";
  EXPECT_GE(c.reconnects(), 2U);
  EXPECT_EQ(doc->text(), expected);
  // The server holds exactly the edits, each once.
  connection reader([&] {
    auto r = options_for(server);
    r.token_provider = [&] { return hs256_token(secret, 60s); };
    return r;
  }());
  auto fresh = reader.open("docs", "token");
  ASSERT_TRUE(fresh->wait_synchronised(20s));
  EXPECT_EQ(fresh->text(), expected);
  std::lock_guard lock(errors_mutex);
  bool saw_expiry = false;
  for (const auto& e : errors) saw_expiry = saw_expiry || e.find("4001") != std::string::npos;
  EXPECT_TRUE(saw_expiry) << "the disconnect reports the server's close code";
}
