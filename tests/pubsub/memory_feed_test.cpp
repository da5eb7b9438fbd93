// The op feed conformance suite on the in-process hub: instances sharing one
// memory store and one hub, as instances share Redis.
#include "otsync/pubsub/memory_feed.hpp"

#include <latch>

#include "op_feed_conformance.hpp"
#include "otsync/store/memory_store.hpp"

namespace otsync::pubsub::test {
namespace {

struct memory_traits {
  struct shared {
    explicit shared(std::size_t max_queued_ops = 65536) : hub(max_queued_ops) {}
    memory_hub hub;
    std::shared_ptr<store::shared_memory> memory = store::make_shared_memory(hub.publisher());
  };
  static std::unique_ptr<shared> open_shared() { return std::make_unique<shared>(); }
  static backend::backend open_instance(shared& s, const std::string& instance_id) {
    return {store::make_memory_store(s.memory, instance_id), s.hub.open_feed(instance_id), nullptr};
  }
};

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, OpFeedConformance, ::testing::Types<memory_traits>);

namespace {

// A subscriber too slow for the bounded queue: what was queued is dropped and
// every subscription resyncs from the op log, as after a Redis reconnect.
TEST(MemoryHub, AnOverflowingQueueMakesEverySubscriberResync) {
  memory_traits::shared shared(8);
  auto writer = memory_traits::open_instance(shared, "writer");
  auto reader = memory_traits::open_instance(shared, "reader");
  doc_history doc{{"c", "slow"}};
  std::latch release(1);
  recorder got;
  std::atomic<bool> first{true};
  reader.feed->subscribe(
      doc.key,
      [&](oplog::op_record op) {
        if (first.exchange(false)) release.wait();  // holds the delivery thread
        got.on_op()(std::move(op));
      },
      got.on_resync());
  ASSERT_TRUE(got.wait_resyncs(1));
  auto create = doc.next(oplog::create_body{std::string(store::test::text_type), ""}, false, 1, "w");
  ASSERT_EQ(store::test::commit(*writer.store, create), std::error_code{});
  doc.accept(create);
  for (int i = 0; i < 20; ++i) {
    auto request = doc.next(append_text(doc.head.data, "x"), false, 2, "w");
    ASSERT_EQ(store::test::commit(*writer.store, request), std::error_code{});
    doc.accept(request);
  }
  release.count_down();
  EXPECT_TRUE(got.wait_resyncs(2)) << "no resync after the queue overflowed";
  EXPECT_LT(got.ops().size(), doc.log.size()) << "nothing was dropped: the bound did not hold";
  reader.feed.reset();
}

TEST(MemoryHub, AFeedMayOutliveItsHub) {
  auto shared = memory_traits::open_shared();
  auto instance = memory_traits::open_instance(*shared, "a");
  recorder got;
  instance.feed->subscribe({"c", "d"}, got.on_op(), got.on_resync());
  shared.reset();
  EXPECT_TRUE(instance.feed->connected());
  instance.feed.reset();
}

}  // namespace
}  // namespace otsync::pubsub::test
