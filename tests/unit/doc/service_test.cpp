// The registry as the document service: reads of the past over the memory
// store (a snapshot at each version, at a time, past the head, over stored
// ops that do not replay), op ranges and listings, and a subscription taken
// off through the handle its subscribe returned.
#include "otsync/doc/service.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "otsync/doc/registry.hpp"
#include "otsync/oplog/error.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/errors.hpp"
#include "otsync/store/memory_store.hpp"

namespace otsync::doc {
namespace {

namespace asio = boost::asio;
using C = ot::component;

const std::string uri(ot::type_uri);

class counting_subscriber : public subscriber {
 public:
  void on_op(const shared_broadcast& op) override { seen.push_back(op->src); }
  std::vector<std::string> seen;
};

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest()
      : storage_(store::make_memory_store()), registry_(io_.get_executor(), *storage_, {}), service_(registry_) {}

  // Appends an op straight to the store (the store never applies ops itself:
  // `after` is only its head's version and type).
  void commit(const store::doc_key& key, std::uint64_t version, oplog::op_body body, std::int64_t ts,
              std::optional<std::string> type = uri) {
    oplog::snapshot after{version + 1, std::move(type), "", std::nullopt};
    std::error_code result = store::errc::unavailable;
    storage_->commit({key, {"w", version + 1, version, std::move(body), ts}, after, false},
                     [&result](std::error_code ec) { result = ec; });
    ASSERT_FALSE(result) << result.message();
  }

  // The memory store answers inline.
  ot::result<oplog::snapshot> at(const store::doc_key& key, std::uint64_t version) {
    std::optional<ot::result<oplog::snapshot>> out;
    service_.snapshot_at(key, version, [&out](ot::result<oplog::snapshot> r) { out.emplace(std::move(r)); });
    EXPECT_TRUE(out);
    return out ? std::move(*out) : ot::result<oplog::snapshot>(store::errc::closed);
  }
  ot::result<oplog::snapshot> at_time(const store::doc_key& key, std::int64_t ts) {
    std::optional<ot::result<oplog::snapshot>> out;
    service_.snapshot_at_time(key, ts, [&out](ot::result<oplog::snapshot> r) { out.emplace(std::move(r)); });
    EXPECT_TRUE(out);
    return out ? std::move(*out) : ot::result<oplog::snapshot>(store::errc::closed);
  }
  void settle() {
    io_.restart();
    io_.run();
  }

  asio::io_context io_;
  std::unique_ptr<store::store> storage_;
  registry registry_;
  document_service& service_;
  store::doc_key key_{"docs", "d1"};
};

TEST_F(ServiceTest, SnapshotAtEachVersionReplaysTheLog) {
  commit(key_, 0, oplog::create_body{uri, "a"}, 100);
  commit(key_, 1, ot::op{C::skip(1), C::insert("b")}, 200);
  commit(key_, 2, oplog::delete_body{}, 300, std::nullopt);
  const std::vector<std::pair<std::optional<std::string>, std::string>> expected = {
      {std::nullopt, ""}, {uri, "a"}, {uri, "ab"}, {std::nullopt, ""}};
  for (std::uint64_t v = 0; v < expected.size(); ++v) {
    auto snap = at(key_, v);
    ASSERT_TRUE(snap) << v << ": " << snap.error().message();
    EXPECT_EQ(snap->version, v);
    EXPECT_EQ(snap->type_uri, expected[v].first) << v;
    EXPECT_EQ(snap->data, expected[v].second) << v;
  }
  for (std::uint64_t v : {4u, 100u}) {
    auto beyond = at(key_, v);
    ASSERT_FALSE(beyond);
    EXPECT_EQ(beyond.error(), oplog::errc::version_from_the_future);
    EXPECT_EQ(protocol::to_read_error_info(beyond.error()).code, "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT");
  }
  auto missing = at({"docs", "none"}, 0);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->type_uri);

  EXPECT_EQ(at_time(key_, 99)->version, 0U);
  EXPECT_EQ(at_time(key_, 150)->data, "a");
  EXPECT_EQ(at_time(key_, 200)->data, "ab");
  EXPECT_EQ(at_time(key_, 1000)->version, 3U);
}

TEST_F(ServiceTest, StoredOpsThatDoNotReplayAreCorruptData) {
  commit(key_, 0, oplog::create_body{uri, "a"}, 100);
  commit(key_, 1, ot::op{C::skip(5), C::insert("b")}, 200);  // past the end of "a"
  ASSERT_TRUE(at(key_, 1));
  auto broken = at(key_, 2);
  ASSERT_FALSE(broken);
  auto info = protocol::to_read_error_info(broken.error());
  EXPECT_EQ(info.code, "ERR_DATABASE_CORRUPT");
  EXPECT_EQ(info.message, broken.error().message());
}

TEST_F(ServiceTest, OpRangesAndListingsComeFromTheStore) {
  commit(key_, 0, oplog::create_body{uri, "a"}, 100);
  commit(key_, 1, ot::op{C::insert("b")}, 200);
  commit({"docs", "d2"}, 0, oplog::create_body{uri, "x"}, 100);
  std::optional<ot::result<std::vector<oplog::op_record>>> ops;
  service_.ops(key_, 1, std::nullopt, [&ops](auto r) { ops.emplace(std::move(r)); });
  ASSERT_TRUE(ops && *ops);
  ASSERT_EQ((*ops)->size(), 1U);
  EXPECT_EQ((**ops)[0].version, 1U);
  service_.ops(key_, 2, 1, [&ops](auto r) { ops.emplace(std::move(r)); });
  ASSERT_TRUE(ops && !*ops);
  EXPECT_EQ(ops->error(), store::errc::invalid_argument);

  std::optional<ot::result<std::vector<store::document_summary>>> docs;
  service_.list_documents("docs", "d1", 10, [&docs](auto r) { docs.emplace(std::move(r)); });
  ASSERT_TRUE(docs && *docs);
  ASSERT_EQ((*docs)->size(), 1U);
  EXPECT_EQ((**docs)[0].id, "d2");
}

TEST_F(ServiceTest, AHandleTakesTheSubscriberOffWhereItWasSubscribed) {
  auto who = std::make_shared<counting_subscriber>();
  std::optional<read_result> read;
  auto handle = service_.subscribe(
      key_, who, std::nullopt, [&read](read_result r) { read.emplace(std::move(r)); },
      std::chrono::steady_clock::now());
  ASSERT_TRUE(handle);
  settle();
  ASSERT_TRUE(read && !read->error);

  auto submit = [&](std::uint64_t seq, std::uint64_t version, oplog::op_body body) {
    std::optional<submit_result> out;
    service_.submit(key_, {"other", seq, version, std::move(body)}, [&out](submit_result r) { out.emplace(r); });
    settle();
    ASSERT_TRUE(out && !out->error);
  };
  submit(1, 0, oplog::create_body{uri, "a"});
  EXPECT_EQ(who->seen, std::vector<std::string>{"other"});

  bool removed = false;
  service_.unsubscribe(handle, who.get(), [&removed] { removed = true; });
  settle();
  EXPECT_TRUE(removed);
  submit(2, 1, ot::op{C::insert("b")});
  EXPECT_EQ(who->seen.size(), 1U);

  // Nothing subscribed: nothing to take off, done at once.
  bool done = false;
  service_.unsubscribe(subscription_handle{}, who.get(), [&done] { done = true; });
  EXPECT_TRUE(done);
}

}  // namespace
}  // namespace otsync::doc
