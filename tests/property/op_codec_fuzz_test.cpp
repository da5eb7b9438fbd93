// Fuzzing the op codec and the OT core with malformed input: random JSON
// values (valid and invalid ops, wrong types, bad text) and random bytes.
// Every input gets a result or a named error, never a crash (this test runs
// under ASan+UBSan too), and every accepted op round-trips and behaves.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/op_json.hpp"
#include "support/random_ops.hpp"

namespace otsync {
namespace {

using nlohmann::json;

class codec_fuzzer {
 public:
  explicit codec_fuzzer(std::uint64_t seed) : random_(seed) {}

  json component() {
    switch (random_.uniform(0, 13)) {
      case 0:
        return nullptr;
      case 1:
        return random_.chance(0.5);
      case 2:
        return static_cast<std::int64_t>(random_.uniform(0, 20)) - 10;
      case 3:
        return static_cast<double>(random_.uniform(0, 40)) / 4.0;
      case 4:
        return random_.chance(0.5) ? json(std::string()) : json(random_.text(4));
      case 5:
        return json::object({{"d", static_cast<std::int64_t>(random_.uniform(0, 6)) - 2}});
      case 6:
        return json::object({{"d", random_.chance(0.3) ? std::string() : random_.text(3)}});
      case 7:
        return json::object({{"d", json::array({1})}});
      case 8:
        return json::object();
      case 9:
        return json::array({1, "x"});
      case 10:
        return json(std::string(1, static_cast<char>(random_.uniform(0x80, 0xFF))));  // broken UTF-8
      case 11:
        return json(std::string("\xED\xA0\x80"));  // a lone surrogate, as UTF-8
      case 12:
        return json::object({{"d", 1e300}});
      default:
        return static_cast<std::uint64_t>(random_.uniform(1, 5));
    }
  }

  json value() {
    if (random_.chance(0.05)) return component();  // not even an array
    json out = json::array();
    for (auto n = random_.uniform(0, 6); n > 0; --n) out.push_back(component());
    return out;
  }

  std::string bytes() {
    std::string out;
    for (auto n = random_.uniform(0, 24); n > 0; --n) {
      static const char alphabet[] = "[]{}\",:0123456789-.edtrufalsn \\u\xC3\xA9\xED\xA0\x80";
      out += alphabet[random_.uniform(0, sizeof alphabet - 2)];
    }
    return out;
  }

  test::random_ops& random() { return random_; }

 private:
  test::random_ops random_;
};

void exercise(const json& value, test::random_ops& random, std::size_t& accepted) {
  auto parsed = protocol::op_from_json(value);
  if (!parsed) {
    EXPECT_EQ(parsed.error().category(), ot::error_category()) << value.dump();
    EXPECT_FALSE(parsed.error().message().empty());
    return;
  }
  ++accepted;
  const ot::op& o = *parsed;
  EXPECT_FALSE(ot::check(o));
  // Round trip through the wire form.
  auto again = protocol::op_from_json(json::parse(protocol::op_to_json(o).dump()));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, o);
  // Apply to a random document: a new valid text, or a named error with the document untouched.
  const std::string doc = random.document(12);
  ot::rope text(doc);
  if (auto error = ot::apply(text, o)) {
    EXPECT_EQ(error, ot::errc::op_too_long);
    EXPECT_TRUE(text == doc);
  }
  EXPECT_TRUE(text.check_invariants());
  // Transform and compose against a valid op succeed and give valid ops.
  const ot::op other = random.op_for(doc);
  for (const auto side : {ot::side::left, ot::side::right}) {
    auto moved = ot::transform(o, other, side);
    ASSERT_TRUE(moved.has_value());
    EXPECT_FALSE(ot::check(*moved));
  }
  auto composed = ot::compose(o, ot::op{});
  ASSERT_TRUE(composed.has_value());
  EXPECT_EQ(*composed, ot::normalize(o));
}

TEST(OpCodecFuzz, RandomJsonValuesNeverCrash) {
  codec_fuzzer fuzz(test::fuzz_seed(99));
  std::size_t accepted = 0;
  const int rounds = test::fuzz_iterations(20000);
  for (int i = 0; i < rounds; ++i) exercise(fuzz.value(), fuzz.random(), accepted);
  EXPECT_GT(accepted, static_cast<std::size_t>(rounds) / 50);  // some inputs must get through
  RecordProperty("accepted", static_cast<int>(accepted));
  std::printf("accepted %zu of %d\n", accepted, rounds);
}

TEST(OpCodecFuzz, RandomBytesNeverCrash) {
  codec_fuzzer fuzz(test::fuzz_seed(100));
  std::size_t accepted = 0;
  for (int i = 0, rounds = test::fuzz_iterations(20000); i < rounds; ++i) {
    const json value = json::parse(fuzz.bytes(), nullptr, false);
    if (!value.is_discarded()) exercise(value, fuzz.random(), accepted);
  }
  SUCCEED() << accepted << " accepted";
}

}  // namespace
}  // namespace otsync
