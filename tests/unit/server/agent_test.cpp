// The per-connection protocol state machine, driven without sockets: a fake
// connection records frames and closes, documents live in a registry over
// the memory store, and an io_context runs in the test until idle.
#include "otsync/server/agent.hpp"
#include "doc/document.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <nlohmann/json.hpp>

#include "otsync/client/ot_client.hpp"
#include "otsync/doc/registry.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/message.hpp"
#include "otsync/protocol/op_json.hpp"
#include "otsync/server/presence_hub.hpp"
#include "otsync/store/memory_store.hpp"
#include "support/random_ops.hpp"

namespace otsync::server {
namespace {

namespace asio = boost::asio;
using nlohmann::json;
using namespace std::chrono_literals;

const std::string uri(ot::type_uri);

// A connection without a socket: records what the agent sends and closes;
// `post` runs on a strand of the test's io_context.
class fake_io : public connection_io, public std::enable_shared_from_this<fake_io> {
 public:
  explicit fake_io(asio::io_context& io) : strand_(asio::make_strand(io)) {}

  void send(doc::shared_frame frame) override {
    frames.push_back(*frame);
    if (on_send) on_send(*frame);
  }
  void close(std::uint16_t code, std::string reason) override { closes.emplace_back(code, std::move(reason)); }
  void post(std::function<void()> fn) override {
    asio::post(strand_, [weak = weak_from_this(), fn = std::move(fn)] {
      if (weak.lock()) fn();
    });
  }
  void post_after(std::chrono::milliseconds delay, std::function<void()> fn) override {
    auto timer = std::make_shared<asio::steady_timer>(strand_, delay);
    timer->async_wait([timer, weak = weak_from_this(), fn = std::move(fn)](boost::system::error_code) {
      if (weak.lock()) fn();
    });
  }
  void resume_reading() override { ++resumes; }
  void show_presence(std::shared_ptr<const shown_presence> shown) override {
    if (owner) {
      owner->show_presence(std::move(shown));
    } else {
      connection_io::show_presence(std::move(shown));
    }
  }

  /// The frames sent since the last call, parsed.
  std::vector<json> take() {
    std::vector<json> out;
    for (const auto& f : frames) out.push_back(json::parse(f));
    frames.clear();
    return out;
  }

  asio::strand<asio::io_context::executor_type> strand_;
  std::vector<std::string> frames;
  std::vector<std::pair<std::uint16_t, std::string>> closes;
  int resumes = 0;
  std::function<void(const std::string&)> on_send;
  agent* owner = nullptr;  ///< shown presences go through it, as websocket_session does
};

struct connection {
  std::shared_ptr<fake_io> io;
  std::unique_ptr<agent> protocol;
};

json op_frame(const std::string& d, std::optional<std::uint64_t> v, std::uint64_t seq, const char* key, json body) {
  json m = {{"a", "op"}, {"c", "docs"}, {"d", d}, {"seq", seq}, {"x", json::object()}};
  m["v"] = v ? json(*v) : json(nullptr);
  m[key] = std::move(body);
  return m;
}

json create_body(const std::string& text) {
  return {{"type", "text-unicode"}, {"data", text}};
}

json ack(const std::string& src, std::uint64_t seq, std::uint64_t v, const std::string& d) {
  return {{"src", src}, {"seq", seq}, {"v", v}, {"a", "op"}, {"c", "docs"}, {"d", d}};
}

json broadcast(const std::string& d, std::uint64_t v, const std::string& src, std::uint64_t seq, const char* key,
               json body) {
  json m = {{"a", "op"}, {"c", "docs"}, {"d", d}, {"v", v}, {"src", src}, {"seq", seq}};
  m[key] = std::move(body);
  return m;
}

// Compares an error reply with the echo of a request (its addressing fields,
// never its payload), ignoring the message text (clients must not depend on
// it) but requiring one.
void expect_error_reply(const json& reply, const json& request, const std::string& code) {
  ASSERT_TRUE(reply.contains("error")) << reply;
  EXPECT_EQ(reply["error"]["code"], code) << reply;
  EXPECT_TRUE(reply["error"]["message"].is_string()) << reply;
  EXPECT_FALSE(reply["error"]["message"].get<std::string>().empty()) << reply;
  json echoed = reply;
  echoed.erase("error");
  EXPECT_EQ(echoed, protocol::echo_fields(request, 1000));
}

class AgentTest : public ::testing::Test {
 protected:
  AgentTest() = default;

  void TearDown() override {
    connections_.clear();
    settle();
  }

  virtual doc::document_options options() { return {}; }

  doc::registry& documents() {
    if (!registry_) registry_ = std::make_unique<doc::registry>(io_.get_executor(), *storage_, options());
    return *registry_;
  }

  connection& connect(const std::string& id, agent_options opts = {}, agent_observer* observer = nullptr) {
    if (!opts.identity) opts.identity = &keys_;
    auto c = std::make_unique<connection>();
    c->io = std::make_shared<fake_io>(io_);
    c->protocol = std::make_unique<agent>(documents(), c->io, id, opts, observer);
    c->io->owner = c->protocol.get();
    connections_.push_back(std::move(c));
    return *connections_.back();
  }

  // Runs the io_context until nothing is ready to run (bounded).
  void settle() {
    for (int i = 0; i < 100000; ++i) {
      io_.restart();
      if (io_.poll() == 0) return;
    }
    FAIL() << "io_context did not settle";
  }

  // Sends one message and returns everything the connection got back.
  std::vector<json> exchange(connection& c, const json& message) {
    c.protocol->on_frame(message.dump());
    settle();
    return c.io->take();
  }
  std::vector<json> exchange(connection& c, const char* frame) {
    c.protocol->on_frame(frame);
    settle();
    return c.io->take();
  }

  // A document "d" created by `c` with `text` (seq 1), acked at v0.
  void create(connection& c, const std::string& d, const std::string& text, std::uint64_t seq = 1) {
    auto replies = exchange(c, op_frame(d, 0, seq, "create", create_body(text)));
    ASSERT_EQ(replies.size(), 1U);
    ASSERT_EQ(replies[0], ack(c.protocol->src(), seq, 0, d));
  }

  // An edit at `v`, which must be acked at `v` with nothing before it.
  void edit(connection& c, const std::string& d, std::uint64_t v, std::uint64_t seq, json op) {
    auto replies = exchange(c, op_frame(d, v, seq, "op", std::move(op)));
    ASSERT_EQ(replies.size(), 1U) << json(replies);
    ASSERT_EQ(replies[0], ack(c.protocol->src(), seq, v, d));
  }

  json snapshot(const std::string& d) {
    auto& probe = connect("probe");
    auto replies = exchange(probe, json{{"a", "f"}, {"c", "docs"}, {"d", d}, {"v", nullptr}});
    EXPECT_EQ(replies.size(), 1U);
    return replies.empty() ? json() : replies[0]["data"];
  }

  auth::identity_keys keys_{std::string(32, 'k')};
  asio::io_context io_;
  std::unique_ptr<store::store> storage_ = store::make_memory_store();
  std::unique_ptr<doc::registry> registry_;
  std::unique_ptr<presence_hub> hub_;  // before the connections: they leave it when they go
  std::vector<std::unique_ptr<connection>> connections_;
};

// ---------------------------------------------------------------------------

TEST_F(AgentTest, HandshakeAdoptsOnlyIdsTheServerMinted) {
  auto& a = connect("0123456789abcdef0123456789abcdef");
  auto replies = exchange(a, R"({"a":"hs","id":null,"protocol":1,"protocolMinor":2})");
  ASSERT_EQ(replies.size(), 1U);
  json expected = json::parse(R"({"a":"hs","protocol":1,"protocolMinor":2,
      "id":"0123456789abcdef0123456789abcdef","type":"http://sharejs.org/types/JSONv0"})");
  expected["alias"] = keys_.alias("0123456789abcdef0123456789abcdef");  // how others see this connection
  EXPECT_EQ(replies[0], expected);

  // A made-up id (or one minted under another secret) is not adopted: the client keeps the one it was given.
  for (const std::string& made_up : {std::string("previous-id"), auth::identity_keys(std::string(32, 'x')).mint_id(),
                                     keys_.alias(keys_.mint_id())}) {
    replies = exchange(a, json{{"a", "hs"}, {"id", made_up}, {"protocol", 1}, {"protocolMinor", 2}});
    ASSERT_EQ(replies.size(), 1U);
    EXPECT_EQ(replies[0]["id"], "0123456789abcdef0123456789abcdef");
  }
  // A reconnecting client's previous id, minted here, becomes the src of its ops.
  const auto previous = keys_.mint_id();
  replies = exchange(a, json{{"a", "hs"}, {"id", previous}, {"protocol", 1}, {"protocolMinor", 2}});
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["id"], previous);
  EXPECT_EQ(a.protocol->src(), previous);
  replies = exchange(a, op_frame("d1", 0, 1, "create", create_body("x")));
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0], ack(previous, 1, 0, "d1"));

  // Every hs is answered (ShareDB clients send two).
  replies = exchange(a, R"({"a":"hs","protocol":1,"protocolMinor":2})");
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["id"], previous);
}

TEST_F(AgentTest, FetchAndSubscribeOfAMissingDocument) {
  auto& a = connect("a");
  EXPECT_EQ(exchange(a, R"({"a":"f","c":"docs","d":"nope","v":null})"),
            std::vector<json>{json::parse(R"({"a":"f","c":"docs","d":"nope","data":{"v":0,"type":null}})")});
  EXPECT_EQ(exchange(a, R"({"a":"s","c":"docs","d":"nope"})"),
            std::vector<json>{json::parse(R"({"a":"s","c":"docs","d":"nope","data":{"v":0,"type":null}})")});
  EXPECT_EQ(a.protocol->subscriptions(), 1U);
}

TEST_F(AgentTest, CreateEditDeleteAndRecreate) {
  auto& a = connect("srcA");
  create(a, "d1", "héllo 😀");
  EXPECT_EQ(snapshot("d1"), json::parse(R"({"v":1,"data":"héllo 😀","type":"http://sharejs.org/types/text-unicode"})"));
  edit(a, "d1", 1, 2, json::parse(R"([6,{"d":1},"🌍"])"));
  EXPECT_EQ(snapshot("d1"), json::parse(R"({"v":2,"data":"héllo 🌍","type":"http://sharejs.org/types/text-unicode"})"));
  auto replies = exchange(a, op_frame("d1", 2, 3, "del", true));
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0], ack("srcA", 3, 2, "d1"));
  EXPECT_EQ(snapshot("d1"), json::parse(R"({"v":3,"type":null})"));
  // An edit of the deleted document.
  replies = exchange(a, op_frame("d1", 3, 4, "op", json::parse(R"(["x"])")));
  ASSERT_EQ(replies.size(), 1U);
  expect_error_reply(replies[0], op_frame("d1", 3, 4, "op", json::parse(R"(["x"])")), "ERR_DOC_DOES_NOT_EXIST");
  // Created again: one more version.
  replies = exchange(a, op_frame("d1", 3, 5, "create", create_body("again")));
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0], ack("srcA", 5, 3, "d1"));
  EXPECT_EQ(snapshot("d1"), json::parse(R"({"v":4,"data":"again","type":"http://sharejs.org/types/text-unicode"})"));
}

TEST_F(AgentTest, CreateByUriIsStoredAndBroadcastAsTheUri) {
  auto& a = connect("a");
  auto& b = connect("b");
  ASSERT_EQ(exchange(b, R"({"a":"s","c":"docs","d":"d1","v":null})").size(), 1U);
  auto replies = exchange(a, op_frame("d1", std::nullopt, 1, "create", json{{"type", uri}, {"data", "x"}}));
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0], ack("a", 1, 0, "d1"));
  EXPECT_EQ(b.io->take(), std::vector<json>{broadcast("d1", 0, "a", 1, "create", json{{"type", uri}, {"data", "x"}})});
}

TEST_F(AgentTest, SubscribersGetTheBroadcastButNotTheAuthor) {
  auto& a = connect("srcA");
  auto& b = connect("srcB");
  create(a, "d1", "hello");
  EXPECT_EQ(exchange(a, R"({"a":"s","c":"docs","d":"d1","v":null})")[0]["data"]["v"], 1);
  EXPECT_EQ(exchange(b, R"({"a":"s","c":"docs","d":"d1","v":null})")[0]["data"]["data"], "hello");

  auto replies = exchange(a, op_frame("d1", 1, 2, "op", json::parse(R"([5," world"])")));
  EXPECT_EQ(replies, std::vector<json>{ack("srcA", 2, 1, "d1")});
  EXPECT_EQ(b.io->take(), std::vector<json>{broadcast("d1", 1, "srcA", 2, "op", json::parse(R"([5," world"])"))});

  // And the other way round.
  replies = exchange(b, op_frame("d1", 2, 1, "del", true));
  EXPECT_EQ(replies, std::vector<json>{ack("srcB", 1, 2, "d1")});
  EXPECT_EQ(a.io->take(), std::vector<json>{broadcast("d1", 2, "srcB", 1, "del", true)});
}

TEST_F(AgentTest, SubscribingTwiceDeliversEachOpOnce) {
  auto& a = connect("a");
  auto& b = connect("b");
  create(a, "d1", "x");
  ASSERT_EQ(exchange(b, R"({"a":"s","c":"docs","d":"d1"})").size(), 1U);
  ASSERT_EQ(exchange(b, R"({"a":"s","c":"docs","d":"d1","v":1})").size(), 1U);
  ASSERT_EQ(exchange(b, R"({"a":"bs","c":"docs","b":["d1"]})").size(), 1U);
  EXPECT_EQ(b.protocol->subscriptions(), 1U);
  edit(a, "d1", 1, 2, json::parse(R"(["y"])"));
  EXPECT_EQ(b.io->take().size(), 1U);
}

TEST_F(AgentTest, MissedOpsArriveBeforeTheAck) {
  auto& a = connect("srcA");
  auto& b = connect("srcB");
  create(a, "d1", "hello");
  edit(a, "d1", 1, 2, json::parse(R"(["X"])"));
  // B made its edit at v1, before seeing A's.
  auto replies = exchange(b, op_frame("d1", 1, 1, "op", json::parse(R"([5,"!"])")));
  EXPECT_EQ(replies,
            (std::vector<json>{broadcast("d1", 1, "srcA", 2, "op", json::parse(R"(["X"])")), ack("srcB", 1, 2, "d1")}));
  EXPECT_EQ(snapshot("d1")["data"], "Xhello!");

  // From further back: every op since the submitted version, in order.
  edit(a, "d1", 3, 3, json::parse(R"([7,"?"])"));
  replies = exchange(b, op_frame("d1", 0, 2, "op", json::parse(R"(["<"])")));
  ASSERT_EQ(replies.size(), 1U);
  // Made at v0, before the create: refused (ShareDB: created remotely).
  EXPECT_EQ(replies[0]["error"]["code"], "ERR_DOC_ALREADY_CREATED");
  replies = exchange(b, op_frame("d1", 1, 3, "op", json::parse(R"(["<"])")));
  ASSERT_EQ(replies.size(), 4U);
  EXPECT_EQ(replies[0]["v"], 1);
  EXPECT_EQ(replies[1]["v"], 2);
  EXPECT_EQ(replies[1]["src"], "srcB");
  EXPECT_EQ(replies[2]["v"], 3);
  EXPECT_EQ(replies[3], ack("srcB", 3, 4, "d1"));
  EXPECT_EQ(snapshot("d1"),
            json::parse(R"({"v":5,"data":"<Xhello!?","type":"http://sharejs.org/types/text-unicode"})"));
}

TEST_F(AgentTest, ResendOfACommittedOpIsAckedAtItsOriginalVersionAndNotAppliedTwice) {
  auto& a = connect("srcA");
  create(a, "d1", "hello");
  edit(a, "d1", 1, 2, json::parse(R"(["A"])"));  // v1
  const auto srcB = keys_.mint_id();
  {
    // B submits at v1; it is committed at v2, but B's connection drops before the ack.
    auto& b = connect(srcB);
    b.protocol->on_frame(op_frame("d1", 1, 7, "op", json::parse(R"([5,"B"])")).dump());
    settle();
    ASSERT_EQ(b.io->take().size(), 2U);
    b.protocol->on_closed();
  }
  edit(a, "d1", 3, 3, json::parse(R"(["C"])"));  // v3
  const json before = snapshot("d1");
  EXPECT_EQ(before, json::parse(R"({"v":4,"data":"CAhelloB","type":"http://sharejs.org/types/text-unicode"})"));

  // B reconnects with its old id and resends the op exactly as before.
  auto& again = connect(keys_.mint_id());
  ASSERT_EQ(exchange(again, json{{"a", "hs"}, {"id", srcB}, {"protocol", 1}, {"protocolMinor", 2}}).size(), 1U);
  json resend = op_frame("d1", 1, 7, "op", json::parse(R"([5,"B"])"));
  resend["src"] = srcB;
  auto replies = exchange(again, resend);
  // The op B missed (v1), then the ack with the original version (v2).
  EXPECT_EQ(replies,
            (std::vector<json>{broadcast("d1", 1, "srcA", 2, "op", json::parse(R"(["A"])")), ack(srcB, 7, 2, "d1")}));
  EXPECT_EQ(snapshot("d1"), before);
  // Resent at its own commit version: just the ack.
  json at_commit = resend;  // as the client has it by then: transformed past the op at v1
  at_commit["v"] = 2;
  at_commit["op"] = json::parse(R"([6,"B"])");
  EXPECT_EQ(exchange(again, at_commit), std::vector<json>{ack(srcB, 7, 2, "d1")});
  EXPECT_EQ(snapshot("d1"), before);

  // The same resend from a connection that did not adopt the id (explicit src): refused, not acked.
  auto& other = connect("other");
  replies = exchange(other, resend);
  ASSERT_EQ(replies.size(), 1U);
  expect_error_reply(replies[0], resend, "ERR_SRC_NOT_OWNED");

  // The same (src, seq) on a different op is not a resend: refused, never acked as one.
  json reused = op_frame("d1", 1, 7, "op", json::parse(R"([5,"Z"])"));
  replies = exchange(again, reused);
  ASSERT_EQ(replies.size(), 1U);
  expect_error_reply(replies[0], reused, "ERR_OP_SEQ_REUSED");
  EXPECT_EQ(snapshot("d1"), before);
}

TEST_F(AgentTest, CreateWithNullVersionResendIsAcked) {
  const auto srcA = keys_.mint_id();
  auto& a = connect(srcA);
  auto replies = exchange(a, op_frame("d1", std::nullopt, 1, "create", create_body("hi")));
  EXPECT_EQ(replies, std::vector<json>{ack(srcA, 1, 0, "d1")});
  edit(a, "d1", 1, 2, json::parse(R"([2,"!"])"));

  auto& again = connect(keys_.mint_id());
  exchange(again, json{{"a", "hs"}, {"id", srcA}, {"protocol", 1}, {"protocolMinor", 2}});
  json resend = op_frame("d1", std::nullopt, 1, "create", create_body("hi"));
  resend["src"] = srcA;
  EXPECT_EQ(exchange(again, resend), std::vector<json>{ack(srcA, 1, 0, "d1")});
  // Another create under the creator's (src, seq) is not the resend.
  json reused = op_frame("d1", std::nullopt, 1, "create", create_body("other"));
  replies = exchange(again, reused);
  ASSERT_EQ(replies.size(), 1U);
  expect_error_reply(replies[0], reused, "ERR_OP_SEQ_REUSED");
  EXPECT_EQ(snapshot("d1"), json::parse(R"({"v":2,"data":"hi!","type":"http://sharejs.org/types/text-unicode"})"));
}

TEST_F(AgentTest, CreateOnAnExistingDocumentIsRefused) {
  auto& a = connect("srcA");
  auto& b = connect("srcB");
  create(a, "d1", "first");
  for (std::optional<std::uint64_t> v :
       {std::optional<std::uint64_t>{}, std::optional<std::uint64_t>{1}, std::optional<std::uint64_t>{0}}) {
    json request = op_frame("d1", v, 1, "create", create_body("second"));
    auto replies = exchange(b, request);
    ASSERT_EQ(replies.size(), 1U);
    expect_error_reply(replies[0], request, "ERR_DOC_ALREADY_CREATED");
  }
  // Same seq as the creator but another src: still a collision.
  json request = op_frame("d1", std::nullopt, 1, "create", create_body("second"));
  auto replies = exchange(b, request);
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["error"]["code"], "ERR_DOC_ALREADY_CREATED");
  EXPECT_EQ(snapshot("d1"), json::parse(R"({"v":1,"data":"first","type":"http://sharejs.org/types/text-unicode"})"));
}

TEST_F(AgentTest, EditOfAMissingDocument) {
  auto& a = connect("a");
  json request = op_frame("ghost", 0, 1, "op", json::parse(R"(["x"])"));
  auto replies = exchange(a, request);
  ASSERT_EQ(replies.size(), 1U);
  expect_error_reply(replies[0], request, "ERR_DOC_DOES_NOT_EXIST");
  EXPECT_EQ(snapshot("ghost"), json::parse(R"({"v":0,"type":null})"));
}

TEST_F(AgentTest, VersionFromTheFuture) {
  auto& a = connect("a");
  create(a, "d1", "x");
  for (std::uint64_t v : {2U, 5U, 1000000U}) {
    json request = op_frame("d1", v, 2, "op", json::parse(R"(["y"])"));
    auto replies = exchange(a, request);
    ASSERT_EQ(replies.size(), 1U);
    expect_error_reply(replies[0], request, "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT");
  }
  json request = op_frame("new-doc", 3, 1, "create", create_body("x"));
  auto replies = exchange(a, request);
  ASSERT_EQ(replies.size(), 1U);
  expect_error_reply(replies[0], request, "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT");
  EXPECT_EQ(snapshot("d1")["v"], 1);
}

TEST_F(AgentTest, InvalidOpsAreRefusedWithoutTouchingTheDocument) {
  auto& a = connect("a");
  create(a, "d1", "hello");
  // Past the end of the document.
  json past_end = op_frame("d1", 1, 2, "op", json::parse(R"([10,"x"])"));
  auto replies = exchange(a, past_end);
  ASSERT_EQ(replies.size(), 1U);
  expect_error_reply(replies[0], past_end, "ERR_OT_OP_NOT_APPLIED");
  // Not a text-unicode op.
  json bad = op_frame("d1", 1, 2, "op", json::parse(R"([1,1])"));
  replies = exchange(a, bad);
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["error"],
            json::parse(R"({"code":"ERR_OT_OP_NOT_APPLIED","message":"Adjacent skip components should be combined"})"));
  // json0.
  json json0 = op_frame("d2", 0, 1, "create", json{{"type", "json0"}, {"data", json::object()}});
  replies = exchange(a, json0);
  ASSERT_EQ(replies.size(), 1U);
  expect_error_reply(replies[0], json0, "ERR_DOC_TYPE_NOT_RECOGNIZED");
  // A lone surrogate: refused; the reply echoes the request's address, not its op.
  replies = exchange(a, R"({"a":"op","c":"docs","d":"d1","v":1,"seq":2,"op":["\ud800"]})");
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["error"]["code"], "ERR_OT_OP_BADLY_FORMED");
  EXPECT_FALSE(replies[0].contains("op"));
  EXPECT_EQ(replies[0]["seq"], 2);
  EXPECT_TRUE(a.io->closes.empty());
  EXPECT_EQ(snapshot("d1"), json::parse(R"({"v":1,"data":"hello","type":"http://sharejs.org/types/text-unicode"})"));
}

TEST_F(AgentTest, VersionedSubscribeAndFetchSendOpsThenAReplyWithoutData) {
  auto& a = connect("srcA");
  auto& b = connect("srcB");
  create(a, "d1", "a");
  edit(a, "d1", 1, 2, json::parse(R"([1,"b"])"));
  edit(a, "d1", 2, 3, json::parse(R"([2,"c"])"));

  auto replies = exchange(b, R"({"a":"s","c":"docs","d":"d1","v":1})");
  EXPECT_EQ(replies, (std::vector<json>{broadcast("d1", 1, "srcA", 2, "op", json::parse(R"([1,"b"])")),
                                        broadcast("d1", 2, "srcA", 3, "op", json::parse(R"([2,"c"])")),
                                        json::parse(R"({"a":"s","c":"docs","d":"d1"})")}));
  // Subscribed: the next op follows.
  edit(a, "d1", 3, 4, json::parse(R"([3,"d"])"));
  EXPECT_EQ(b.io->take(), std::vector<json>{broadcast("d1", 3, "srcA", 4, "op", json::parse(R"([3,"d"])"))});

  // At the head: just the reply.
  EXPECT_EQ(exchange(b, R"({"a":"f","c":"docs","d":"d1","v":4})"),
            std::vector<json>{json::parse(R"({"a":"f","c":"docs","d":"d1"})")});
  // From the beginning, the create included.
  replies = exchange(b, R"({"a":"f","c":"docs","d":"d1","v":0})");
  ASSERT_EQ(replies.size(), 5U);
  EXPECT_EQ(replies[0], broadcast("d1", 0, "srcA", 1, "create", json{{"type", uri}, {"data", "a"}}));
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(replies[i]["v"], i);
  EXPECT_EQ(replies[4], json::parse(R"({"a":"f","c":"docs","d":"d1"})"));
  // Beyond the head: no ops, the reply.
  replies = exchange(b, R"({"a":"f","c":"docs","d":"d1","v":99})");
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies.back()["a"], "f");
  EXPECT_FALSE(replies.back().contains("data"));
}

TEST_F(AgentTest, BulkArrayFormRepliesWithADataMap) {
  auto& a = connect("srcA");
  auto& b = connect("srcB");
  create(a, "d1", "one");
  create(a, "d2", "two");
  auto replies = exchange(b, R"({"a":"bf","c":"docs","b":["d1","d2","d3"]})");
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0], json::parse(R"({"a":"bf","c":"docs","data":{
      "d1":{"v":1,"data":"one","type":"http://sharejs.org/types/text-unicode"},
      "d2":{"v":1,"data":"two","type":"http://sharejs.org/types/text-unicode"},
      "d3":{"v":0,"type":null}}})"));
  EXPECT_EQ(b.protocol->subscriptions(), 0U);

  replies = exchange(b, R"({"a":"bs","c":"docs","b":["d1","d2","d3"]})");
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["a"], "bs");
  EXPECT_EQ(replies[0]["data"].size(), 3U);
  EXPECT_EQ(b.protocol->subscriptions(), 3U);
  edit(a, "d2", 1, 2, json::parse(R"([3,"!"])"));
  create(a, "d3", "three", 3);
  EXPECT_EQ(b.io->take(),
            (std::vector<json>{broadcast("d2", 1, "srcA", 2, "op", json::parse(R"([3,"!"])")),
                               broadcast("d3", 0, "srcA", 3, "create", json{{"type", uri}, {"data", "three"}})}));
  // Empty bulk requests get a reply too.
  EXPECT_EQ(exchange(b, R"({"a":"bf","c":"docs","b":[]})"),
            std::vector<json>{json::parse(R"({"a":"bf","c":"docs","data":{}})")});
}

TEST_F(AgentTest, BulkMapFormSendsOpsThenEchoesB) {
  auto& a = connect("srcA");
  auto& b = connect("srcB");
  create(a, "d1", "one");
  edit(a, "d1", 1, 2, json::parse(R"([3,"!"])"));
  create(a, "d2", "two", 3);
  auto replies = exchange(b, R"({"a":"bs","c":"docs","b":{"d1":1,"d2":0}})");
  EXPECT_EQ(replies, (std::vector<json>{broadcast("d1", 1, "srcA", 2, "op", json::parse(R"([3,"!"])")),
                                        broadcast("d2", 0, "srcA", 3, "create", json{{"type", uri}, {"data", "two"}}),
                                        json::parse(R"({"a":"bs","c":"docs","b":{"d1":1,"d2":0}})")}));
  EXPECT_EQ(b.protocol->subscriptions(), 2U);
  edit(a, "d2", 1, 4, json::parse(R"(["?"])"));
  EXPECT_EQ(b.io->take(), std::vector<json>{broadcast("d2", 1, "srcA", 4, "op", json::parse(R"(["?"])"))});

  replies = exchange(b, R"({"a":"bf","c":"docs","b":{"d1":2}})");
  EXPECT_EQ(replies, std::vector<json>{json::parse(R"({"a":"bf","c":"docs","b":{"d1":2}})")});
}

TEST_F(AgentTest, UnsubscribeAndBulkUnsubscribe) {
  auto& a = connect("srcA");
  auto& b = connect("srcB");
  create(a, "d1", "one");
  create(a, "d2", "two", 2);
  create(a, "d3", "three", 3);
  ASSERT_EQ(exchange(b, R"({"a":"bs","c":"docs","b":["d1","d2","d3"]})").size(), 1U);
  EXPECT_EQ(exchange(b, R"({"a":"u","c":"docs","d":"d1"})"),
            std::vector<json>{json::parse(R"({"a":"u","c":"docs","d":"d1"})")});
  EXPECT_EQ(b.protocol->subscriptions(), 2U);
  edit(a, "d1", 1, 4, json::parse(R"(["x"])"));
  EXPECT_TRUE(b.io->take().empty());
  edit(a, "d2", 1, 5, json::parse(R"(["x"])"));
  EXPECT_EQ(b.io->take().size(), 1U);

  EXPECT_EQ(exchange(b, R"({"a":"bu","c":"docs","b":["d2","d3","never-subscribed"]})"),
            std::vector<json>{json::parse(R"({"a":"bu","c":"docs","b":["d2","d3","never-subscribed"]})")});
  EXPECT_EQ(b.protocol->subscriptions(), 0U);
  edit(a, "d2", 2, 6, json::parse(R"(["y"])"));
  edit(a, "d3", 1, 7, json::parse(R"(["y"])"));
  EXPECT_TRUE(b.io->take().empty());
  // Unsubscribing from something never subscribed still gets its one reply.
  EXPECT_EQ(exchange(b, R"({"a":"u","c":"docs","d":"zzz"})"),
            std::vector<json>{json::parse(R"({"a":"u","c":"docs","d":"zzz"})")});
}

TEST_F(AgentTest, PingQueriesPresence) {
  auto& a = connect("a");
  EXPECT_EQ(exchange(a, R"({"a":"pp"})"), std::vector<json>{json::parse(R"({"a":"pp"})")});
  for (const char* frame : {R"({"a":"qf","id":1,"c":"docs","q":{}})", R"({"a":"qs","id":2,"c":"docs","q":{"x":1}})"}) {
    auto replies = exchange(a, frame);
    ASSERT_EQ(replies.size(), 1U);
    expect_error_reply(replies[0], json::parse(frame), "ERR_DATABASE_METHOD_NOT_IMPLEMENTED");
  }
  for (const char* frame : {R"({"a":"p","ch":"docs.d1","id":"p1","p":{"index":1},"pv":0,"c":"docs","d":"d1","v":1})",
                            R"({"a":"ps","ch":"docs.d1","seq":1})", R"({"a":"pu","ch":"docs.d1","seq":2})",
                            R"({"a":"pr","ch":"docs.d1"})"}) {
    auto replies = exchange(a, frame);
    ASSERT_EQ(replies.size(), 1U);
    expect_error_reply(replies[0], json::parse(frame), "ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE");
  }
  EXPECT_EQ(exchange(a, R"({"a":"qu","id":1})"), std::vector<json>{json::parse(R"({"a":"qu","id":1})")});
}

TEST_F(AgentTest, SnapshotAtEachVersion) {
  auto& a = connect("a");
  create(a, "d1", "a");
  edit(a, "d1", 1, 2, json::parse(R"([1,"b"])"));
  ASSERT_EQ(exchange(a, op_frame("d1", 2, 3, "del", true)).size(), 1U);
  const std::vector<json> expected = {
      json::parse(R"({"v":0,"type":null})"),
      json::parse(R"({"v":1,"data":"a","type":"http://sharejs.org/types/text-unicode"})"),
      json::parse(R"({"v":2,"data":"ab","type":"http://sharejs.org/types/text-unicode"})"),
      json::parse(R"({"v":3,"type":null})"),
  };
  for (std::size_t v = 0; v < expected.size(); ++v) {
    auto replies = exchange(a, json{{"a", "nf"}, {"id", 10 + v}, {"c", "docs"}, {"d", "d1"}, {"v", v}});
    ASSERT_EQ(replies.size(), 1U);
    json want = expected[v];
    want["a"] = "nf";
    want["id"] = 10 + v;
    want["m"] = nullptr;
    EXPECT_EQ(replies[0], want) << "v" << v;
  }
  auto latest = exchange(a, R"({"a":"nf","id":20,"c":"docs","d":"d1","v":null})");
  ASSERT_EQ(latest.size(), 1U);
  EXPECT_EQ(latest[0]["v"], 3);
  EXPECT_EQ(latest[0]["id"], 20);
  for (int v : {4, 100}) {
    json request = {{"a", "nf"}, {"id", 30}, {"c", "docs"}, {"d", "d1"}, {"v", v}};
    auto replies = exchange(a, request);
    ASSERT_EQ(replies.size(), 1U);
    expect_error_reply(replies[0], request, "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT");
  }
  auto missing = exchange(a, R"({"a":"nf","id":31,"c":"docs","d":"none","v":0})");
  ASSERT_EQ(missing.size(), 1U);
  EXPECT_EQ(missing[0]["type"], nullptr);
  EXPECT_EQ(missing[0]["v"], 0);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_F(AgentTest, SnapshotAtATimestamp) {
  auto& a = connect("a");
  const auto before = now_ms() - 1;
  std::this_thread::sleep_for(3ms);
  create(a, "d1", "a");
  std::this_thread::sleep_for(3ms);
  const auto after_create = now_ms();
  std::this_thread::sleep_for(3ms);
  edit(a, "d1", 1, 2, json::parse(R"([1,"b"])"));
  std::this_thread::sleep_for(3ms);
  const auto after_edit = now_ms();

  auto at = [&](json ts) {
    auto replies = exchange(a, json{{"a", "nt"}, {"id", 5}, {"c", "docs"}, {"d", "d1"}, {"ts", ts}});
    EXPECT_EQ(replies.size(), 1U);
    EXPECT_EQ(replies[0]["a"], "nt");
    EXPECT_EQ(replies[0]["id"], 5);
    return replies[0];
  };
  EXPECT_EQ(at(before)["v"], 0);
  EXPECT_EQ(at(before)["type"], nullptr);
  EXPECT_EQ(at(after_create)["v"], 1);
  EXPECT_EQ(at(after_create)["data"], "a");
  EXPECT_EQ(at(after_edit)["v"], 2);
  EXPECT_EQ(at(after_edit)["data"], "ab");
  EXPECT_EQ(at(after_edit + 100000)["v"], 2);
  EXPECT_EQ(at(nullptr)["data"], "ab");
}

TEST_F(AgentTest, UnknownActionIsEchoedWithAnError) {
  auto& a = connect("a");
  auto replies = exchange(a, R"({"a":"zz","c":"docs","extra":[1,2]})");
  EXPECT_EQ(replies, std::vector<json>{json::parse(R"({"a":"zz","c":"docs",
      "error":{"code":"ERR_MESSAGE_BADLY_FORMED","message":"Invalid or unknown message"}})")});
  replies = exchange(a, R"({"a":"f","c":"docs","d":"d1","v":-3})");
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["error"]["code"], "ERR_MESSAGE_BADLY_FORMED");
  EXPECT_TRUE(a.io->closes.empty());
}

TEST_F(AgentTest, NonObjectClosesWith1007) {
  for (const char* frame : {"[1,2]", "42", "\"hs\"", "null", "{not json"}) {
    auto& a = connect("a");
    auto replies = exchange(a, frame);
    ASSERT_EQ(replies.size(), 1U) << frame;
    EXPECT_EQ(replies[0]["error"]["code"], "ERR_MESSAGE_BADLY_FORMED");
    ASSERT_EQ(a.io->closes.size(), 1U) << frame;
    EXPECT_EQ(a.io->closes[0].first, 1007);
  }
}

TEST_F(AgentTest, BackpressureStopsReadingUntilRepliesDrain) {
  agent_options three;
  three.max_pending_requests = 3;
  auto& a = connect("a", three);
  EXPECT_TRUE(a.protocol->can_read());
  a.protocol->on_frame(R"({"a":"f","c":"docs","d":"d1"})");
  a.protocol->on_frame(R"({"a":"f","c":"docs","d":"d2"})");
  EXPECT_TRUE(a.protocol->can_read());
  a.protocol->on_frame(R"({"a":"op","c":"docs","d":"d3","v":0,"seq":1,"create":{"type":"text-unicode"}})");
  EXPECT_FALSE(a.protocol->can_read());
  EXPECT_EQ(a.io->resumes, 0);
  // Requests answered at once (ping, errors) do not count.
  a.protocol->on_frame(R"({"a":"pp"})");
  settle();
  EXPECT_TRUE(a.protocol->can_read());
  EXPECT_EQ(a.io->resumes, 1);
  auto replies = a.io->take();
  ASSERT_EQ(replies.size(), 4U);
  EXPECT_EQ(replies[0], json::parse(R"({"a":"pp"})"));  // answered at once
  EXPECT_NE(std::find(replies.begin(), replies.end(), ack("a", 1, 0, "d3")), replies.end());
}

TEST_F(AgentTest, ClosedAgentStopsDeliveringAndUnsubscribes) {
  auto& a = connect("a");
  auto& b = connect("b");
  create(a, "d1", "x");
  ASSERT_EQ(exchange(b, R"({"a":"s","c":"docs","d":"d1"})").size(), 1U);
  b.protocol->on_closed();
  EXPECT_EQ(b.protocol->subscriptions(), 0U);
  edit(a, "d1", 1, 2, json::parse(R"(["y"])"));
  EXPECT_TRUE(b.io->take().empty());
  // Requests after the close are ignored.
  EXPECT_TRUE(exchange(b, R"({"a":"pp"})").empty());
}

// ---------------------------------------------------------------------------
TEST_F(AgentTest, AnExpiredTokenClosesTheConnectionOnceItsOpInFlightIsAnswered) {
  auto& a = connect("srcA");
  create(a, "d1", "hi");
  // An op in flight when the token runs out: answered first, then the close.
  a.protocol->on_frame(op_frame("d1", 1, 2, "op", json::parse(R"([2,"!"])")).dump());
  a.protocol->expire();
  EXPECT_TRUE(a.io->closes.empty()) << "closed with a request in flight";
  settle();
  auto replies = a.io->take();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0], ack("srcA", 2, 1, "d1"));
  ASSERT_EQ(a.io->closes.size(), 1U);
  EXPECT_EQ(a.io->closes[0].first, token_expired_close_code);
  EXPECT_EQ(a.io->closes[0].second, "token expired");
  // Nothing more is handled.
  a.protocol->on_frame(op_frame("d1", 2, 3, "op", json::parse(R"(["x"])")).dump());
  settle();
  EXPECT_TRUE(a.io->take().empty());
  EXPECT_EQ(snapshot("d1")["data"], "hi!");
  // Idle when it expires: closed at once.
  auto& b = connect("srcB");
  b.protocol->expire();
  ASSERT_EQ(b.io->closes.size(), 1U);
  EXPECT_EQ(b.io->closes[0].first, token_expired_close_code);
}

TEST_F(AgentTest, ReadOnlyAndUngrantedDocumentsAreRefusedWithForbidden) {
  auto& w = connect("w");
  create(w, "open", "o");
  create(w, "secret", "s");
  auto rules = std::get<auth::access_rules>(
      auth::access_rules::from_patterns(std::vector<std::string>{"docs/open"}, std::vector<std::string>{}));
  agent_options opts;
  opts.access = &rules;
  auto& r = connect("reader", opts);
  EXPECT_EQ(exchange(r, R"({"a":"f","c":"docs","d":"open","v":null})").at(0)["data"]["data"], "o");
  for (const char* request :
       {R"({"a":"f","c":"docs","d":"secret","v":null})", R"({"a":"s","c":"docs","d":"secret","v":null})",
        R"({"a":"nf","id":1,"c":"docs","d":"secret","v":0})", R"({"a":"bf","c":"docs","b":["open","secret"]})",
        R"({"a":"bs","c":"docs","b":{"open":0,"secret":0}})"}) {
    auto replies = exchange(r, request);
    ASSERT_EQ(replies.size(), 1U) << request;
    expect_error_reply(replies[0], json::parse(request), "ERR_FORBIDDEN");
  }
  EXPECT_EQ(r.protocol->subscriptions(), 0U) << "a refused bulk subscribe subscribes nothing";
  // Read-only: its op is refused and never applied.
  json op = op_frame("open", 1, 1, "op", json::parse(R"(["x"])"));
  auto replies = exchange(r, op);
  ASSERT_EQ(replies.size(), 1U);
  expect_error_reply(replies[0], op, "ERR_FORBIDDEN");
  EXPECT_EQ(snapshot("open")["data"], "o");
}

// The sharedb client takes a presence older than its document for stale, and its catch-up cannot
// cross its own ops: a caret moved to the head just before another client's op was committed must
// reach that client again, past its op, after its ack.
class AgentPresenceTest : public AgentTest {
 protected:
  /// Connections `a` and `b` on document "d" ("hello") and its presence channel, with a hub that
  /// moves presences through the registry, as the server's does.
  void SetUp() override {
    presence_hub::options hub_options;
    hub_options.move = [this](const store::doc_key& key, std::uint64_t version, std::string src,
                              std::optional<ot::selection> range, doc::presence_handler done) {
      documents().transform_presence(key, version, std::move(src), range, std::move(done));
    };
    hub_ = std::make_unique<presence_hub>(std::move(hub_options));
    agent_options opts;
    opts.presence = hub_.get();
    a_ = &connect("a", opts);
    b_ = &connect("b", opts);
    create(*a_, "d", "hello");
    for (auto* c : {a_, b_}) {
      ASSERT_EQ(exchange(*c, R"({"a":"s","c":"docs","d":"d"})").size(), 1U);
      ASSERT_FALSE(exchange(*c, R"({"a":"ps","ch":"docs.d","seq":1})").empty());
    }
    a_->io->take();
  }

  static json caret(std::uint64_t pv, std::uint64_t version, int index) {
    return {{"a", "p"}, {"ch", "docs.d"}, {"id", "caret"}, {"p", {{"index", index}, {"length", 0}}},
            {"pv", pv}, {"c", "docs"},    {"d", "d"},      {"v", version},
            {"t", uri}};
  }

  connection* a_ = nullptr;
  connection* b_ = nullptr;
};

TEST_F(AgentPresenceTest, APresenceShownBeforeTheReceiversOwnOpIsGivenAgainPastIt) {
  auto& a = *a_;
  auto& b = *b_;
  for (std::uint64_t round = 0; round < 3; ++round) {
    // a's caret is moved to the head (version 1 + round) before b's insert there is committed.
    a.protocol->on_frame(caret(round, 1 + round, 3).dump());
    b.protocol->on_frame(op_frame("d", 1 + round, 1 + round, "op", json::parse(R"(["xy"])")).dump());
    settle();
    auto frames = b.io->take();
    std::ptrdiff_t acked = -1;
    std::ptrdiff_t shown = -1;
    for (std::size_t i = 0; i < frames.size(); ++i) {
      if (frames[i]["a"] == "op" && !frames[i].contains("error") &&
          frames[i].value("seq", std::uint64_t{0}) == 1 + round) {
        acked = static_cast<std::ptrdiff_t>(i);
      }
      if (frames[i]["a"] == "p" && frames[i]["id"] == "caret") shown = static_cast<std::ptrdiff_t>(i);
    }
    ASSERT_GE(acked, 0) << json(frames);
    ASSERT_GT(shown, acked) << json(frames);
    const auto& last = frames[static_cast<std::size_t>(shown)];
    // The last the client gets is at its version after the ack, with its own insert before the caret.
    EXPECT_EQ(last["v"], 2 + round) << json(frames);
    EXPECT_EQ(last["p"]["index"], 5) << json(frames);
    EXPECT_EQ(last["pv"], round) << json(frames);
    a.io->take();
  }
}

// A subscribe reply brings the client to the snapshot's version: a presence older than that (moved
// to the head before a commit, then handed to this connection after its reply) is moved there before
// it is sent (the sharedb client would take it for stale and ask again), for a single subscribe and
// for each document of a bulk one.
TEST_F(AgentPresenceTest, APresenceOlderThanTheSubscribeReplyIsMovedToItsVersion) {
  edit(*a_, "d", 1, 2, json::parse(R"(["xy"])"));  // version 2: "xyhello"
  edit(*a_, "d", 2, 3, json::parse(R"(["z"])"));   // version 3: "zxyhello"
  a_->io->take();
  b_->io->take();
  agent_options opts;
  opts.presence = hub_.get();
  auto& single = connect("single", opts);
  auto& bulk = connect("bulk", opts);
  ASSERT_EQ(exchange(single, R"({"a":"s","c":"docs","d":"d"})").size(), 1U);
  ASSERT_FALSE(exchange(bulk, R"({"a":"bs","c":"docs","b":["d"]})").empty());
  for (auto* c : {&single, &bulk}) {
    ASSERT_FALSE(exchange(*c, R"({"a":"ps","ch":"docs.d","seq":1})").empty());
    // b's caret as it was shown at version 1, before both inserts.
    protocol::presence_update_request late;
    late.channel = "docs.d";
    late.id = "caret";
    late.pv = 1;
    late.value = {{"index", 3}, {"length", 0}};
    late.collection = "docs";
    late.doc_id = "d";
    late.version = 1;
    late.type = uri;
    auto frame = std::make_shared<const std::string>(protocol::encode_presence(late, "b"));
    c->protocol->show_presence(make_shown_presence(frame, late, "b", "b"));
    settle();
    std::optional<json> shown;
    const auto frames = c->io->take();
    for (const auto& m : frames) {
      if (m["a"] == "p" && m["id"] == "caret") shown = m;
    }
    ASSERT_TRUE(shown) << json(frames);
    EXPECT_EQ((*shown)["v"], 3) << *shown;
    EXPECT_EQ((*shown)["p"]["index"], 6) << *shown;
  }
}

// A presence moved to the head in the handler that committed an op reaches the other connections
// through its sender's thread, while the op's broadcast comes from the document's: it can arrive
// first. It waits for the ops it is ahead of (the client would hold it or take it for a presence of
// a document it does not have), and goes as it is once it has waited presence_ops_wait.
TEST_F(AgentPresenceTest, APresenceAheadOfTheOpsGivenWaitsForThem) {
  agent_options opts;
  opts.presence = hub_.get();
  opts.presence_ops_wait = 400ms;
  auto& c = connect("c", opts);
  ASSERT_EQ(exchange(c, R"({"a":"s","c":"docs","d":"d"})").size(), 1U);  // at version 1
  ASSERT_FALSE(exchange(c, R"({"a":"ps","ch":"docs.d","seq":1})").empty());
  auto show = [&](std::uint64_t version, std::uint64_t pv) {
    protocol::presence_update_request ahead;
    ahead.channel = "docs.d";
    ahead.id = "caret";
    ahead.pv = pv;
    ahead.value = {{"index", 2}, {"length", 0}};
    ahead.collection = "docs";
    ahead.doc_id = "d";
    ahead.version = version;
    ahead.type = uri;
    auto frame = std::make_shared<const std::string>(protocol::encode_presence(ahead, "b"));
    c.protocol->show_presence(make_shown_presence(frame, ahead, "b", "b"));
    settle();
  };
  a_->io->take();  // c's join asked the members to show theirs (`pr`)
  show(2, 1);
  EXPECT_TRUE(c.io->take().empty()) << "sent before the op it is at";
  edit(*a_, "d", 1, 2, json::parse(R"(["xy"])"));  // version 2
  auto frames = c.io->take();
  ASSERT_EQ(frames.size(), 2U) << json(frames);
  EXPECT_EQ(frames[0]["a"], "op") << json(frames);
  EXPECT_EQ(frames[0]["v"], 1) << json(frames);
  EXPECT_EQ(frames[1]["a"], "p") << json(frames);
  EXPECT_EQ(frames[1]["v"], 2) << json(frames);
  EXPECT_EQ(frames[1]["pv"], 1) << json(frames);

  // A newer one replaces the one waiting; at the version given, it goes at once.
  show(4, 2);
  show(5, 3);
  EXPECT_TRUE(c.io->take().empty());
  show(2, 4);
  frames = c.io->take();
  ASSERT_EQ(frames.size(), 1U) << json(frames);
  EXPECT_EQ(frames[0]["pv"], 4);

  // Ops that never come: it goes as it is after its own wait (a timer set for an earlier one that
  // fires meanwhile does not send it early).
  show(9, 5);
  EXPECT_TRUE(c.io->take().empty());
  std::this_thread::sleep_for(150ms);
  settle();
  EXPECT_TRUE(c.io->take().empty()) << "sent before its wait";
  std::this_thread::sleep_for(350ms);
  settle();
  frames = c.io->take();
  ASSERT_EQ(frames.size(), 1U) << json(frames);
  EXPECT_EQ(frames[0]["pv"], 5);
  EXPECT_EQ(frames[0]["v"], 9);
  std::this_thread::sleep_for(500ms);
  settle();
  EXPECT_TRUE(c.io->take().empty()) << "sent twice";
}

// --max-kept-presences bounds what a connection keeps to send again: past it a presence is only
// sent (and counted), not given again after the connection's own ack.
TEST_F(AgentPresenceTest, PastMaxKeptPresencesAPresenceIsOnlySent) {
  struct unkept_counter : agent_observer {
    void on_error_reply(std::string_view) override {}
    void on_presence_unkept() override { ++unkept; }
    int unkept = 0;
  } observer;
  agent_options opts;
  opts.presence = hub_.get();
  opts.max_kept_presences = 0;
  auto& c = connect("c", opts, &observer);
  ASSERT_EQ(exchange(c, R"({"a":"s","c":"docs","d":"d"})").size(), 1U);
  ASSERT_FALSE(exchange(c, R"({"a":"ps","ch":"docs.d","seq":1})").empty());
  a_->io->take();
  b_->io->take();
  a_->protocol->on_frame(caret(0, 1, 3).dump());
  settle();
  c.protocol->on_frame(op_frame("d", 1, 1, "op", json::parse(R"(["xy"])")).dump());
  settle();
  auto frames = c.io->take();
  std::ptrdiff_t acked = -1;
  int carets = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (frames[i]["a"] == "op" && !frames[i].contains("error") && frames[i].value("seq", std::uint64_t{0}) == 1) {
      acked = static_cast<std::ptrdiff_t>(i);
    }
    if (frames[i]["a"] == "p" && frames[i]["id"] == "caret") {
      ++carets;
      EXPECT_LT(static_cast<std::ptrdiff_t>(i), acked < 0 ? std::ptrdiff_t{1 << 20} : acked)
          << "given again after the ack: " << json(frames);
    }
  }
  ASSERT_GE(acked, 0) << json(frames);
  EXPECT_EQ(carets, 1) << json(frames);
  EXPECT_GE(observer.unkept, 1);
  // b keeps it (the default bound): its own op gets the caret again after its ack.
  b_->protocol->on_frame(op_frame("d", 2, 1, "op", json::parse(R"(["z"])")).dump());
  settle();
  auto b_frames = b_->io->take();
  EXPECT_TRUE(std::any_of(b_frames.begin(), b_frames.end(), [](const json& f) { return f["a"] == "p"; }))
      << json(b_frames);
}

// The sharedb client asks (`pr`) when it took a presence for stale: answered from what its connection
// was shown, at the head, to it alone; the other members are not asked to send to everyone.
TEST_F(AgentPresenceTest, APrFromAMemberIsAnsweredWithWhatItWasShownAtTheHead) {
  auto& a = *a_;
  auto& b = *b_;
  a.protocol->on_frame(caret(1, 1, 3).dump());
  settle();
  a.io->take();
  ASSERT_EQ(b.io->take().size(), 1U);
  edit(a, "d", 1, 2, json::parse(R"(["xy"])"));  // an insert before the caret: it moves
  b.io->take();
  auto replies = exchange(b, R"({"a":"pr","ch":"docs.d"})");
  std::optional<json> shown;
  for (const auto& m : replies) {
    if (m["a"] == "p") shown = m;
  }
  ASSERT_TRUE(shown) << json(replies);
  EXPECT_EQ((*shown)["v"], 2) << *shown;
  EXPECT_EQ((*shown)["p"]["index"], 5) << *shown;
  EXPECT_EQ((*shown)["pv"], 1) << *shown;
  for (const auto& m : a.io->take()) EXPECT_NE(m["a"], "pr") << m;
}

// As the server runs: op frames carry the author's alias.
class AgentIdentityTest : public AgentTest {
 protected:
  doc::document_options options() override {
    doc::document_options o;
    o.public_src = [this](std::string_view src) { return keys_.alias(src); };
    return o;
  }
};

TEST_F(AgentIdentityTest, OthersSeeAnAliasAndTheAuthorItsOwnId) {
  const auto srcA = keys_.mint_id();
  auto& a = connect(srcA);
  auto& b = connect(keys_.mint_id());
  create(a, "d1", "hi");
  ASSERT_EQ(exchange(b, R"({"a":"s","c":"docs","d":"d1","v":null})").size(), 1U);
  edit(a, "d1", 1, 2, json::parse(R"([2,"!"])"));
  // B's broadcast names A by alias only.
  auto got = b.io->take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0], broadcast("d1", 1, keys_.alias(srcA), 2, "op", json::parse(R"([2,"!"])")));
  // Catch-up from v0: B sees aliases, A its own id (a reconnecting sharedb client
  // recognises its op in flight by src and seq).
  auto for_b = exchange(b, R"({"a":"f","c":"docs","d":"d1","v":0})");
  ASSERT_EQ(for_b.size(), 3U);
  EXPECT_EQ(for_b[0]["src"], keys_.alias(srcA));
  EXPECT_EQ(for_b[1]["src"], keys_.alias(srcA));
  auto for_a = exchange(a, R"({"a":"f","c":"docs","d":"d1","v":0})");
  ASSERT_EQ(for_a.size(), 3U);
  EXPECT_EQ(for_a[0]["src"], srcA);
  EXPECT_EQ(for_a[1], broadcast("d1", 1, srcA, 2, "op", json::parse(R"([2,"!"])")));
  // B cannot become A with what it saw: the alias is not an id.
  auto hs = exchange(b, json{{"a", "hs"}, {"id", keys_.alias(srcA)}, {"protocol", 1}, {"protocolMinor", 2}});
  ASSERT_EQ(hs.size(), 1U);
  EXPECT_NE(hs[0]["id"], srcA);
  EXPECT_NE(b.protocol->src(), keys_.alias(srcA));
  // Nor by naming A's id on its ops, had it learnt it: refused, nothing applied, and A still gets B's edits.
  ASSERT_EQ(exchange(a, R"({"a":"s","c":"docs","d":"d1","v":null})").size(), 1U);
  for (const std::string& forged : {srcA, keys_.alias(srcA)}) {
    json op = op_frame("d1", 2, 3, "op", json::parse(R"(["x"])"));
    op["src"] = forged;
    auto replies = exchange(b, op);
    ASSERT_EQ(replies.size(), 1U);
    expect_error_reply(replies[0], op, "ERR_SRC_NOT_OWNED");
  }
  EXPECT_TRUE(a.io->take().empty());
  edit(b, "d1", 2, 4, json::parse(R"(["B"])"));
  got = a.io->take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0]["src"], keys_.alias(b.protocol->src()));
  EXPECT_EQ(snapshot("d1")["data"], "Bhi!");
}

// A small op cache and frequent snapshots: history reads go to the store.

class AgentHistoryTest : public AgentTest {
 protected:
  doc::document_options options() override {
    doc::document_options o;
    o.recent_ops = 3;
    o.snapshot_interval = 4;
    return o;
  }
};

TEST_F(AgentHistoryTest, OldHistoryComesFromTheStore) {
  auto& a = connect("srcA");
  auto& b = connect("srcB");
  create(a, "d1", "");
  std::string text;
  for (std::uint64_t v = 1; v <= 12; ++v) {
    const std::string letter(1, static_cast<char>('a' + v - 1));
    edit(a, "d1", v, v + 1, text.empty() ? json::array({letter}) : json::array({text.size(), letter}));
    text += letter;
  }
  EXPECT_EQ(snapshot("d1")["data"], text);
  // Subscribe from far back: every op in order.
  auto replies = exchange(b, R"({"a":"s","c":"docs","d":"d1","v":2})");
  ASSERT_EQ(replies.size(), 12U);
  for (std::size_t i = 0; i < 11; ++i) EXPECT_EQ(replies[i]["v"], 2 + i);
  EXPECT_EQ(replies[11], json::parse(R"({"a":"s","c":"docs","d":"d1"})"));
  // A submission from far back, transformed against everything since.
  replies = exchange(b, op_frame("d1", 1, 1, "op", json::parse(R"(["<"])")));
  ASSERT_EQ(replies.size(), 13U);
  for (std::size_t i = 0; i < 12; ++i) EXPECT_EQ(replies[i]["v"], 1 + i);
  EXPECT_EQ(replies[12], ack("srcB", 1, 13, "d1"));
  // A resend from far back.
  json resend = op_frame("d1", 3, 4, "op", json::parse(R"([2,"c"])"));
  resend["src"] = "srcA";
  replies = exchange(a, resend);
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0], ack("srcA", 4, 3, "d1"));
  // Every version.
  std::string expected;
  for (std::uint64_t v = 0; v <= 14; ++v) {
    auto r = exchange(a, json{{"a", "nf"}, {"id", v}, {"c", "docs"}, {"d", "d1"}, {"v", v}});
    ASSERT_EQ(r.size(), 1U);
    EXPECT_EQ(r[0]["v"], v);
    if (v == 0) {
      EXPECT_EQ(r[0]["type"], nullptr);
    } else if (v <= 13) {
      EXPECT_EQ(r[0]["data"], text.substr(0, v - 1));
    } else {
      EXPECT_EQ(r[0]["data"], "<" + text);
    }
  }
  EXPECT_EQ(snapshot("d1"), json({{"v", 14}, {"data", "<" + text}, {"type", uri}}));
}

// ---------------------------------------------------------------------------

TEST_F(AgentTest, IdleDocumentsAreEvictedAndReloadedTransparently) {
  auto& a = connect("srcA");
  create(a, "d1", "héllo");
  edit(a, "d1", 1, 2, json::parse(R"([5," 😀"])"));
  const json before = snapshot("d1");
  auto held = documents().get({"docs", "d1"});
  ASSERT_EQ(documents().open_documents(), 1U);

  documents().start_eviction(20ms, 10ms);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (documents().open_documents() != 0 && std::chrono::steady_clock::now() < deadline) {
    io_.restart();
    io_.run_for(5ms);
  }
  ASSERT_EQ(documents().open_documents(), 0U);

  // Loaded again on demand, the same document.
  EXPECT_EQ(snapshot("d1"), before);
  EXPECT_EQ(documents().open_documents(), 1U);
  // A request through a pointer to the evicted instance reaches the live one.
  bool fetched = false;
  held->fetch(std::nullopt, [&](doc::read_result r) {
    fetched = true;
    ASSERT_TRUE(r.snap);
    EXPECT_EQ(r.snap->version, 2U);
    EXPECT_EQ(r.snap->data, "héllo 😀");
  });
  settle();
  EXPECT_TRUE(fetched);

  // A subscribed document stays.
  auto& b = connect("srcB");
  ASSERT_EQ(exchange(b, R"({"a":"s","c":"docs","d":"d1"})").size(), 1U);
  deadline = std::chrono::steady_clock::now() + 150ms;
  while (std::chrono::steady_clock::now() < deadline) {
    io_.restart();
    io_.run_for(5ms);
  }
  EXPECT_EQ(documents().open_documents(), 1U);
  edit(a, "d1", 2, 3, json::parse(R"(["!"])"));
  EXPECT_EQ(b.io->take(), std::vector<json>{broadcast("d1", 2, "srcA", 3, "op", json::parse(R"(["!"])"))});

  // Unsubscribed: evicted again, and the edit survived.
  ASSERT_EQ(exchange(b, R"({"a":"u","c":"docs","d":"d1"})").size(), 1U);
  deadline = std::chrono::steady_clock::now() + 5s;
  while (documents().open_documents() != 0 && std::chrono::steady_clock::now() < deadline) {
    io_.restart();
    io_.run_for(5ms);
  }
  EXPECT_EQ(documents().open_documents(), 0U);
  documents().stop_eviction();
  io_.restart();
  io_.run_for(20ms);
  EXPECT_EQ(snapshot("d1"), json::parse(R"({"v":3,"data":"!héllo 😀","type":"http://sharejs.org/types/text-unicode"})"));
}

// ---------------------------------------------------------------------------
// Many clients typing at once on two threads: each one sees every other
// client's ops in strictly increasing versions with no gaps, and all
// converge with the server.

struct typist {
  std::shared_ptr<fake_io> io;
  std::unique_ptr<agent> protocol;
  std::unique_ptr<client::ot_client> replica;
  test::random_ops random{0};
  std::uint64_t next_seq = 1;
  int edits_left = 0;
  int sent = 0;
  bool counted = false;
  std::vector<std::uint64_t> versions;  // of ops received and of own acks, in arrival order
  int duplicates = 0;                   // ops already seen (missed ops that also came as broadcasts)
  std::vector<std::string> failures;
};

TEST(AgentConcurrency, SubscribersSeeEveryOpInOrderAndConverge) {
  const auto seed = test::fuzz_seed(77);
  const int clients = 5;
  const int edits = test::fuzz_iterations(60);
  asio::io_context io(2);
  auto storage = store::make_memory_store();
  doc::document_options opts;
  opts.max_batch = 8;
  doc::registry documents(io.get_executor(), *storage, opts);
  auto settle = [&] {
    for (int i = 0; i < 100000; ++i) {
      io.restart();
      if (io.poll() == 0) return;
    }
  };

  // The document, created by someone else.
  auto creator_io = std::make_shared<fake_io>(io);
  agent creator(documents, creator_io, "creator");
  const std::string initial = "The quick brown fox 😀 jumps";
  creator.on_frame(op_frame("race", 0, 1, "create", create_body(initial)).dump());
  settle();
  ASSERT_EQ(creator_io->take(), std::vector<json>{ack("creator", 1, 0, "race")});

  std::vector<std::unique_ptr<typist>> typists;
  std::atomic<int> finished{0};
  for (int i = 0; i < clients; ++i) {
    auto t = std::make_unique<typist>();
    t->io = std::make_shared<fake_io>(io);
    t->protocol = std::make_unique<agent>(documents, t->io, "typist" + std::to_string(i));
    t->replica = std::make_unique<client::ot_client>(t->protocol->src(), 1, initial);
    t->random = test::random_ops(seed * 1000 + static_cast<std::uint64_t>(i));
    t->edits_left = edits;
    t->protocol->on_frame(R"({"a":"s","c":"docs","d":"race","v":1})");
    settle();
    ASSERT_EQ(t->io->take(), std::vector<json>{json::parse(R"({"a":"s","c":"docs","d":"race"})")});
    typists.push_back(std::move(t));
  }

  for (auto& tp : typists) {
    typist* t = tp.get();
    auto send_next = [t] {
      if (auto out = t->replica->flush(t->next_seq)) {
        ++t->sent;
        t->protocol->on_frame(op_frame("race", out->version, out->seq, "op", protocol::op_to_json(out->op)).dump());
      }
    };
    auto check_done = [t, &finished] {
      if (!t->counted && t->edits_left == 0 && t->replica->synchronised()) {
        t->counted = true;
        ++finished;
      }
    };
    // Frames are handled after the agent's call returns, as a socket would.
    t->io->on_send = [t, send_next, check_done](const std::string& frame) {
      t->io->post([t, message = json::parse(frame), send_next, check_done] {
        if (message.contains("error")) {
          t->failures.push_back("error: " + message.dump());
          return;
        }
        if (message["a"] != "op") return;
        const auto v = message["v"].get<std::uint64_t>();
        t->versions.push_back(v);
        if (message.contains("op") || message.contains("create") || message.contains("del")) {
          auto body = protocol::read_op_body(message);
          if (!std::holds_alternative<oplog::op_body>(body)) {
            t->failures.push_back("bad op: " + message.dump());
            return;
          }
          oplog::op_record record{message["src"].get<std::string>(), message["seq"].get<std::uint64_t>(), v,
                                  std::get<oplog::op_body>(body), 0};
          auto r = t->replica->receive(record);
          if (!r) {
            t->failures.push_back("receive failed: " + r.error().message() + ": " + message.dump());
          } else if (*r == client::receive_result::duplicate) {
            ++t->duplicates;
          } else if (*r != client::receive_result::applied) {
            t->failures.push_back("gap or own op: " + std::to_string(static_cast<int>(*r)) + " at version " +
                                  std::to_string(t->replica->version()) + ": " + message.dump());
          }
          return;
        }
        if (message["src"] != t->replica->src()) {
          t->failures.push_back("foreign ack: " + message.dump());
          return;
        }
        if (auto ec = t->replica->acknowledge(v)) t->failures.push_back("bad ack: " + message.dump());
        send_next();
        check_done();
      });
    };
  }
  // Each typist edits in a loop of posted steps, interleaved with everything else.
  std::function<void(typist*)> step = [&step, &finished](typist* t) {
    if (t->edits_left > 0) {
      --t->edits_left;
      auto op = t->random.op_for(t->replica->text().to_string());
      if (auto ec = t->replica->submit(op)) t->failures.push_back("local submit: " + ec.message());
      if (auto out = t->replica->flush(t->next_seq)) {
        ++t->sent;
        t->protocol->on_frame(op_frame("race", out->version, out->seq, "op", protocol::op_to_json(out->op)).dump());
      }
      t->io->post([&step, t] { step(t); });
    }
    if (!t->counted && t->edits_left == 0 && t->replica->synchronised()) {
      t->counted = true;
      ++finished;
    }
  };
  for (auto& t : typists) {
    typist* p = t.get();
    p->io->post([&step, p] { step(p); });
  }

  // Two threads run everything until no work is left (bounded by a watchdog).
  io.restart();
  std::vector<std::thread> threads;
  std::atomic<int> running{2};
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&io, &running] {
      io.run();
      --running;
    });
  }
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (finished.load() < clients && running.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  bool timed_out = finished.load() < clients;
  if (timed_out) io.stop();
  for (auto& th : threads) th.join();
  ASSERT_FALSE(timed_out) << "seed " << seed << ": only " << finished.load() << " typists finished";
  settle();  // broadcasts still on their way

  auto probe_io = std::make_shared<fake_io>(io);
  agent probe(documents, probe_io, "probe");
  probe.on_frame(R"({"a":"f","c":"docs","d":"race"})");
  settle();
  auto replies = probe_io->take();
  ASSERT_EQ(replies.size(), 1U);
  const json server = replies[0]["data"];
  std::uint64_t total_sent = 0;
  for (auto& t : typists) total_sent += static_cast<std::uint64_t>(t->sent);
  EXPECT_EQ(server["v"], 1 + total_sent) << "seed " << seed;

  for (std::size_t i = 0; i < typists.size(); ++i) {
    auto& t = *typists[i];
    SCOPED_TRACE("typist " + std::to_string(i) + ", seed " + std::to_string(seed));
    EXPECT_TRUE(t.failures.empty()) << t.failures.front();
    EXPECT_TRUE(t.replica->synchronised());
    EXPECT_EQ(t.replica->version(), server["v"].get<std::uint64_t>());
    EXPECT_EQ(t.replica->text().to_string(), server["data"].get<std::string>());
    // Strictly increasing with no gaps: every version in [1, head) arrives
    // (as an op or as the ack of an own op) before any later one. Repeats of
    // a version already seen are harmless (a missed op sent before an ack
    // that the subscription also delivered) and are skipped, as clients do.
    std::uint64_t expected = 1;
    for (std::size_t k = 0; k < t.versions.size(); ++k) {
      if (t.versions[k] < expected) continue;
      ASSERT_EQ(t.versions[k], expected) << "gap at position " << k;
      ++expected;
    }
    EXPECT_EQ(expected, 1 + total_sent);
    EXPECT_EQ(t.versions.size() - static_cast<std::size_t>(t.duplicates), total_sent);
  }
  for (auto& t : typists) t->protocol->on_closed();
  creator.on_closed();
  probe.on_closed();
  settle();
}

// ---------------------------------------------------------------------------
// Per-connection limits: each refusal is an error reply with its own code, and
// the connection (and everyone else) carries on.

TEST_F(AgentTest, DeeplyNestedMessagesAreRefusedAndTheConnectionCarriesOn) {
  auto& a = connect("a");
  create(a, "d1", "hello");
  const std::string deep(100000, '[');
  const std::string frames[] = {
      R"({"a":"op","c":"docs","d":"d1","v":1,"seq":2,"op":)" + deep + std::string(100000, ']') + "}",
      R"({"a":"zz","x":)" + deep + std::string(100000, ']') + "}",
  };
  for (const auto& frame : frames) {
    auto replies = exchange(a, frame.c_str());
    ASSERT_EQ(replies.size(), 1U);
    EXPECT_EQ(replies[0]["error"]["code"], "ERR_MESSAGE_BADLY_FORMED");
  }
  EXPECT_TRUE(a.io->closes.empty());
  edit(a, "d1", 1, 3, json::parse(R"([5," world"])"));
  EXPECT_EQ(snapshot("d1")["data"], "hello world");
}

TEST_F(AgentTest, SubscriptionsPerConnectionAreBounded) {
  agent_options opts;
  opts.max_subscriptions = 3;
  auto& a = connect("a", opts);
  for (const char* d : {"s1", "s2", "s3"}) {
    auto replies = exchange(a, json{{"a", "s"}, {"c", "docs"}, {"d", d}});
    ASSERT_EQ(replies.size(), 1U);
    EXPECT_FALSE(replies[0].contains("error")) << replies[0];
  }
  // Subscribing again to one already held is fine; a fourth is not.
  EXPECT_FALSE(exchange(a, json{{"a", "s"}, {"c", "docs"}, {"d", "s2"}})[0].contains("error"));
  auto replies = exchange(a, json{{"a", "s"}, {"c", "docs"}, {"d", "s4"}});
  ASSERT_EQ(replies.size(), 1U);
  expect_error_reply(replies[0], json{{"a", "s"}, {"c", "docs"}, {"d", "s4"}}, "ERR_SUBSCRIPTION_LIMIT_EXCEEDED");
  // A bulk subscribe that would pass the limit is refused whole.
  replies = exchange(a, R"({"a":"bs","c":"docs","b":["s1","s5"]})");
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["error"]["code"], "ERR_SUBSCRIPTION_LIMIT_EXCEEDED");
  EXPECT_EQ(replies[0]["b"], json::parse(R"(["s1","s5"])"));
  EXPECT_EQ(a.protocol->subscriptions(), 3U);
  // Unsubscribing makes room.
  exchange(a, json{{"a", "u"}, {"c", "docs"}, {"d", "s1"}});
  EXPECT_FALSE(exchange(a, json{{"a", "s"}, {"c", "docs"}, {"d", "s4"}})[0].contains("error"));
}

TEST_F(AgentTest, BulkNamingOneDocumentManyTimesReadsItOnce) {
  auto& a = connect("a");
  create(a, "big", std::string(1000, 'x'));
  std::string frame = R"({"a":"bf","c":"docs","b":[)";
  for (int i = 0; i < 100; ++i) frame += i ? ",\"big\"" : "\"big\"";
  frame += "]}";
  auto replies = exchange(a, frame.c_str());
  ASSERT_EQ(replies.size(), 1U);
  ASSERT_EQ(replies[0]["data"].size(), 1U);
  EXPECT_EQ(replies[0]["data"]["big"]["data"].get<std::string>().size(), 1000U);
}

TEST_F(AgentTest, BulkRepliesOverManyLargeDocumentsComeInPages) {
  auto& a = connect("a");
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back("big" + std::to_string(i));
    create(a, ids.back(), std::string(400000, static_cast<char>('a' + i)));
  }
  for (const char* action : {"bf", "bs"}) {
    auto& b = connect(std::string("reader-") + action);
    auto replies = exchange(b, json{{"a", action}, {"c", "docs"}, {"b", ids}});
    // About 2.4 MB in pages of at least 1 MiB: more than one reply, each a valid bulk reply.
    ASSERT_GE(replies.size(), 2U);
    std::map<std::string, std::string> seen;
    for (const auto& reply : replies) {
      EXPECT_EQ(reply["a"], action);
      EXPECT_EQ(reply["c"], "docs");
      for (const auto& [id, snap] : reply["data"].items()) {
        EXPECT_FALSE(seen.contains(id)) << id;
        seen[id] = snap["data"].get<std::string>();
      }
    }
    ASSERT_EQ(seen.size(), ids.size());
    for (int i = 0; i < 6; ++i)
      EXPECT_EQ(seen[ids[static_cast<std::size_t>(i)]], std::string(400000, static_cast<char>('a' + i)));
  }
  // The subscriber gets later edits of every document.
  edit(a, "big5", 1, 2, json::parse(R"(["!"])"));
  auto& reader = connections_[2];  // reader-bs
  settle();
  auto got = reader->io->take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0]["d"], "big5");
}

TEST_F(AgentTest, RequestRateIsLimitedWithAnErrorNotAStall) {
  agent_options opts;
  opts.request_rate = 1;  // one a second, bursts of 5
  opts.request_burst = 5;
  auto& a = connect("a", opts);
  int limited = 0;
  for (int i = 0; i < 8; ++i) {
    for (auto& reply : exchange(a, R"({"a":"f","c":"docs","d":"d1"})")) {
      if (reply.contains("error")) {
        EXPECT_EQ(reply["error"]["code"], "ERR_RATE_LIMITED");
        EXPECT_EQ(reply["d"], "d1");
        ++limited;
      }
    }
  }
  EXPECT_EQ(limited, 3);
  // Another connection is unaffected.
  auto& b = connect("b");
  EXPECT_FALSE(exchange(b, R"({"a":"f","c":"docs","d":"d1"})")[0].contains("error"));
}

TEST_F(AgentTest, DocumentCreationRateIsLimited) {
  agent_options opts;
  opts.create_rate = 0.001;
  opts.create_burst = 3;
  auto& a = connect("a", opts);
  for (int i = 0; i < 3; ++i) create(a, "c" + std::to_string(i), "x");
  auto request = op_frame("c3", 0, 1, "create", create_body("x"));
  auto replies = exchange(a, request);
  ASSERT_EQ(replies.size(), 1U);
  expect_error_reply(replies[0], request, "ERR_CREATE_RATE_LIMITED");
  EXPECT_EQ(snapshot("c3")["type"], nullptr);
  // Edits are not creates.
  edit(a, "c0", 1, 2, json::parse(R"(["y"])"));
}

class AgentMemoryBudgetTest : public AgentTest {
 protected:
  doc::document_options options() override {
    doc::document_options o;
    o.max_open_document_bytes = 12000;
    o.recent_ops_bytes = 1 << 20;
    return o;
  }
};

TEST_F(AgentMemoryBudgetTest, LoadsAreRefusedPastTheBudgetUntilIdleDocumentsAreEvicted) {
  auto& a = connect("a");
  create(a, "m1", std::string(3000, 'x'));
  create(a, "m2", std::string(3000, 'y'));
  for (const char* d : {"m1", "m2"}) exchange(a, json{{"a", "s"}, {"c", "docs"}, {"d", d}});
  // Text and cached ops (record + frame each) of m1 and m2 pass 12000 bytes.
  EXPECT_GT(documents().resident_bytes(), 12000U);
  auto& b = connect("b");
  auto replies = exchange(b, R"({"a":"f","c":"docs","d":"m3"})");
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["error"]["code"], "ERR_MEMORY_BUDGET_EXCEEDED");
  // Documents in use stay open and keep working.
  edit(a, "m1", 1, 3, json::parse(R"(["!"])"));
  // Once they are idle, the next refusal evicts them, and loading works again.
  for (const char* d : {"m1", "m2"}) exchange(a, json{{"a", "u"}, {"c", "docs"}, {"d", d}});
  std::this_thread::sleep_for(std::chrono::milliseconds(120));  // relief runs at most every 100 ms
  exchange(b, R"({"a":"f","c":"docs","d":"m3"})");
  EXPECT_LT(documents().resident_bytes(), 12000U);
  replies = exchange(b, R"({"a":"f","c":"docs","d":"m3"})");
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_FALSE(replies[0].contains("error")) << replies[0];
  // The evicted documents load again, whole.
  EXPECT_EQ(snapshot("m1")["data"], "!" + std::string(3000, 'x'));
}

TEST(TokenBucket, RefillsAtItsRateUpToItsBurst) {
  token_bucket bucket(10, 2);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(bucket.try_take(t0));
  EXPECT_TRUE(bucket.try_take(t0));
  EXPECT_FALSE(bucket.try_take(t0));
  EXPECT_TRUE(bucket.try_take(t0 + std::chrono::milliseconds(100)));
  EXPECT_FALSE(bucket.try_take(t0 + std::chrono::milliseconds(100)));
  // A long pause saves up no more than the burst.
  auto later = t0 + std::chrono::hours(1);
  EXPECT_TRUE(bucket.try_take(later));
  EXPECT_TRUE(bucket.try_take(later));
  EXPECT_FALSE(bucket.try_take(later));
  token_bucket unlimited(0, 0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(unlimited.try_take(t0));
}

}  // namespace
}  // namespace otsync::server
