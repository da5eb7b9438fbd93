// A connection's frame queue: FIFO order, what clear() reports, and the count of frames that may
// not wait for a broadcast hold (replies, pings, pongs, a close), which decides whether a write
// may be held.
#include "send_queue.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace otsync::server {
namespace {

outgoing_frame frame(std::string text, ws::opcode op = ws::opcode::text, bool reply = false) {
  return {std::make_shared<const std::string>(std::move(text)), op, reply};
}

TEST(FrameQueue, BroadcastsAreNotUrgentAnythingElseIs) {
  frame_queue queue;
  queue.push_back(frame("broadcast"));
  EXPECT_EQ(queue.urgent(), 0u);
  queue.push_back(frame("ack", ws::opcode::text, true));
  queue.push_back(frame("", ws::opcode::pong));
  queue.push_back(frame("", ws::opcode::ping));
  queue.push_back(frame("", ws::opcode::close));
  EXPECT_EQ(queue.urgent(), 4u);
  queue.pop_front();  // the broadcast
  EXPECT_EQ(queue.urgent(), 4u);
  queue.pop_front();  // the ack
  EXPECT_EQ(queue.urgent(), 3u);
  const auto dropped = queue.clear();
  EXPECT_EQ(dropped.frames, 3u);
  EXPECT_EQ(queue.urgent(), 0u);
  EXPECT_TRUE(queue.empty());
}

// Property: through any mix of pushes, pops (across the ring's growth and wrap-around) and clears,
// the queue keeps FIFO order and its urgent count equals the urgent frames it holds.
TEST(FrameQueue, OrderAndUrgentCountHoldThroughRandomUse) {
  std::mt19937 rng(7);
  frame_queue queue;
  std::vector<outgoing_frame> model;
  std::size_t model_head = 0;
  auto model_urgent = [&] {
    std::size_t n = 0;
    for (std::size_t i = model_head; i < model.size(); ++i) n += model[i].reply || model[i].op != ws::opcode::text;
    return n;
  };
  for (int step = 0; step < 20000; ++step) {
    const auto dice = rng() % 100;
    if (dice < 55) {
      const auto kind = rng() % 4;
      auto f = frame(std::to_string(step), kind == 3 ? ws::opcode::pong : ws::opcode::text, kind == 2);
      model.push_back(f);
      queue.push_back(std::move(f));
    } else if (dice < 99) {
      if (queue.empty()) continue;
      ASSERT_EQ(*queue.front().payload, *model[model_head].payload);
      queue.pop_front();
      ++model_head;
    } else {
      EXPECT_EQ(queue.clear().frames, model.size() - model_head);
      model_head = model.size();
      queue.release();
    }
    ASSERT_EQ(queue.size(), model.size() - model_head);
    ASSERT_EQ(queue.urgent(), model_urgent()) << "step " << step;
  }
}

}  // namespace
}  // namespace otsync::server
