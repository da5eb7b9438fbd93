// The WebSocket frame codec: headers, every protocol violation's close code,
// and (property) that any split of a valid client stream decodes to the same
// events while random bytes never crash the decoder.
#include "otsync/server/ws_frame.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ws = otsync::server::ws;
using ev = ws::frame_decoder::event;

namespace {

struct decoded {
  ev kind;
  std::string payload;
  std::uint16_t code = 0;
  friend bool operator==(const decoded&, const decoded&) = default;
};

std::ostream& operator<<(std::ostream& os, const decoded& d) {
  return os << static_cast<int>(d.kind) << ":" << d.code << ":" << d.payload;
}

constexpr std::array<std::uint8_t, 4> mask{0x12, 0x34, 0x56, 0x78};

// Feeds `stream` in pieces cut at `cuts` (sorted offsets); stops after an error or a close.
std::vector<decoded> decode_split(ws::frame_decoder& decoder, const std::string& stream,
                                  const std::vector<std::size_t>& cuts) {
  std::vector<decoded> out;
  std::size_t start = 0;
  auto pieces = cuts;
  pieces.push_back(stream.size());
  for (std::size_t end : pieces) {
    if (end < start) continue;
    std::string chunk = stream.substr(start, end - start);
    start = end;
    std::size_t pos = 0;
    while (pos < chunk.size()) {
      auto r = decoder.decode(std::span<char>(chunk.data() + pos, chunk.size() - pos));
      EXPECT_LE(r.used, chunk.size() - pos);
      pos += r.used;
      if (r.kind == ev::need_more) {
        EXPECT_EQ(pos, chunk.size());
        break;
      }
      decoded d{r.kind, std::string(decoder.payload()), 0};
      if (r.kind == ev::close) d.code = decoder.close_status();
      if (r.kind == ev::error) {
        d.code = decoder.error_code();
        d.payload = decoder.error_reason();
      }
      out.push_back(d);
      if (r.kind == ev::error || r.kind == ev::close) return out;
    }
  }
  return out;
}

std::vector<decoded> decode_all(const std::string& stream, std::size_t max = 1 << 20) {
  ws::frame_decoder decoder(max);
  return decode_split(decoder, stream, {});
}

std::string client_frame(ws::opcode op, std::string_view payload, bool fin = true) {
  std::string out;
  ws::append_frame(out, op, fin, payload, mask);
  return out;
}

std::uint16_t error_of(const std::string& stream, std::size_t max = 1 << 20) {
  auto events = decode_all(stream, max);
  if (events.empty() || events.back().kind != ev::error) return 0;
  return events.back().code;
}

}  // namespace

TEST(WsFrame, ServerHeadersUseTheShortestLength) {
  std::array<char, 10> h{};
  EXPECT_EQ(ws::encode_header(ws::opcode::text, 0, h), 2U);
  EXPECT_EQ(static_cast<unsigned char>(h[0]), 0x81);
  EXPECT_EQ(h[1], 0);
  EXPECT_EQ(ws::encode_header(ws::opcode::text, 125, h), 2U);
  EXPECT_EQ(h[1], 125);
  EXPECT_EQ(ws::encode_header(ws::opcode::close, 126, h), 4U);
  EXPECT_EQ(static_cast<unsigned char>(h[0]), 0x88);
  EXPECT_EQ(h[1], 126);
  EXPECT_EQ(static_cast<unsigned char>(h[2]), 0);
  EXPECT_EQ(static_cast<unsigned char>(h[3]), 126);
  EXPECT_EQ(ws::encode_header(ws::opcode::text, 65535, h), 4U);
  EXPECT_EQ(ws::encode_header(ws::opcode::text, 65536, h), 10U);
  EXPECT_EQ(h[1], 127);
  EXPECT_EQ(static_cast<unsigned char>(h[7]), 1);
  EXPECT_EQ(static_cast<unsigned char>(h[8]), 0);
}

TEST(WsFrame, ClosePayloadCutsTheReasonAtACodePoint) {
  auto p = ws::close_payload(1013, "full");
  EXPECT_EQ(p, std::string("\x03\xf5") + "full");
  std::string long_reason(122, 'a');
  long_reason += "\xc3\xa9\xc3\xa9";  // é straddles byte 123
  p = ws::close_payload(1000, long_reason);
  EXPECT_EQ(p.size(), 2U + 122U);
}

TEST(WsFrame, MaskedTextMessageIsReturnedInPlace) {
  std::string stream = client_frame(ws::opcode::text, R"({"a":"hs"})");
  ws::frame_decoder decoder(1024);
  auto r = decoder.decode(stream);
  EXPECT_EQ(r.kind, ev::message);
  EXPECT_EQ(r.used, stream.size());
  EXPECT_EQ(decoder.payload(), R"({"a":"hs"})");
  EXPECT_GE(decoder.payload().data(), stream.data());  // a view of the input: no copy
  EXPECT_LT(decoder.payload().data(), stream.data() + stream.size());
}

TEST(WsFrame, FragmentsWithControlFramesBetweenThem) {
  std::string stream = client_frame(ws::opcode::text, "hel", false) + client_frame(ws::opcode::ping, "p1") +
                       client_frame(ws::opcode::continuation, "lo ", false) + client_frame(ws::opcode::pong, "") +
                       client_frame(ws::opcode::continuation, "world") + client_frame(ws::opcode::text, "") +
                       client_frame(ws::opcode::close, ws::close_payload(1000, "bye"));
  std::vector<decoded> expected{
      {ev::ping, "p1"}, {ev::pong, ""}, {ev::message, "hello world"}, {ev::message, ""}, {ev::close, "bye", 1000}};
  EXPECT_EQ(decode_all(stream), expected);
}

TEST(WsFrame, ProtocolViolationsClose1002) {
  std::string unmasked;
  ws::append_frame(unmasked, ws::opcode::text, true, "x");
  EXPECT_EQ(error_of(unmasked), 1002);
  std::string reserved = client_frame(ws::opcode::text, "x");
  reserved[0] = static_cast<char>(reserved[0] | 0x40);
  EXPECT_EQ(error_of(reserved), 1002);
  std::string unknown = client_frame(ws::opcode::text, "x");
  unknown[0] = static_cast<char>(0x83);
  EXPECT_EQ(error_of(unknown), 1002);
  EXPECT_EQ(error_of(client_frame(ws::opcode::ping, std::string(126, 'p'))), 1002);
  EXPECT_EQ(error_of(client_frame(ws::opcode::ping, "p", false)), 1002);
  EXPECT_EQ(error_of(client_frame(ws::opcode::continuation, "x")), 1002);
  EXPECT_EQ(error_of(client_frame(ws::opcode::text, "a", false) + client_frame(ws::opcode::text, "b")), 1002);
  EXPECT_EQ(error_of(client_frame(ws::opcode::close, "x")), 1002);
  EXPECT_EQ(error_of(client_frame(ws::opcode::close, ws::close_payload(1005, ""))), 1002);
  // 16-bit length used for a size that fits in 7 bits.
  std::string padded = "\x81\xfe";
  padded += std::string("\x00\x05", 2) + "\x00\x00\x00\x00" + "hello";
  EXPECT_EQ(error_of(padded), 1002);
}

TEST(WsFrame, BinaryCloses1003AndBadUtf8Closes1007) {
  EXPECT_EQ(error_of(client_frame(ws::opcode::binary, "x")), 1003);
  EXPECT_EQ(error_of(client_frame(ws::opcode::text, "\xff")), 1007);
  EXPECT_EQ(error_of(client_frame(ws::opcode::text, "\xed\xa0\x80")), 1007);  // a surrogate
  EXPECT_EQ(error_of(client_frame(ws::opcode::close, ws::close_payload(1000, "\xc3"))), 1007);
  // A code point split between fragments is fine.
  auto events =
      decode_all(client_frame(ws::opcode::text, "\xc3", false) + client_frame(ws::opcode::continuation, "\xa9"));
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0], (decoded{ev::message, "\xc3\xa9"}));
}

TEST(WsFrame, MessagesOverTheLimitClose1009) {
  EXPECT_EQ(error_of(client_frame(ws::opcode::text, std::string(11, 'x')), 10), 1009);
  EXPECT_EQ(error_of(client_frame(ws::opcode::text, std::string(10, 'x')), 10), 0);
  EXPECT_EQ(error_of(client_frame(ws::opcode::text, std::string(6, 'x'), false) +
                         client_frame(ws::opcode::continuation, std::string(5, 'x')),
                     10),
            1009);
  // Over the limit is known from the header: the payload need not arrive.
  std::string huge = client_frame(ws::opcode::text, std::string(70000, 'x')).substr(0, 14);
  EXPECT_EQ(error_of(huge, 1024), 1009);
}

TEST(WsFrame, PropertyAnySplitDecodesTheSameEvents) {
  std::mt19937_64 rng(20261125);
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n)(rng); };
  const std::vector<std::string> pieces{"a", "é", "→", "😀", "{\"a\":\"op\"}", " "};
  for (int round = 0; round < 400; ++round) {
    std::string stream;
    std::vector<decoded> expected;
    std::size_t messages = 1 + pick(8);
    for (std::size_t m = 0; m < messages; ++m) {
      std::string text;
      std::size_t length = pick(3) == 0 ? pick(70000) / 4 : pick(40);
      while (text.size() < length) text += pieces[pick(pieces.size() - 1)];
      // Fragments cut anywhere (even inside a code point), with control frames between them.
      std::vector<std::size_t> cuts;
      for (std::size_t f = pick(3); f > 0; --f) cuts.push_back(pick(text.size()));
      std::sort(cuts.begin(), cuts.end());
      cuts.push_back(text.size());
      std::size_t start = 0;
      for (std::size_t i = 0; i < cuts.size(); ++i) {
        bool last = i + 1 == cuts.size();
        std::array<std::uint8_t, 4> key{static_cast<std::uint8_t>(rng()), static_cast<std::uint8_t>(rng()),
                                        static_cast<std::uint8_t>(rng()), static_cast<std::uint8_t>(rng())};
        ws::append_frame(stream, i == 0 ? ws::opcode::text : ws::opcode::continuation, last,
                         std::string_view(text).substr(start, cuts[i] - start), key);
        start = cuts[i];
        if (last) expected.push_back({ev::message, text});
        if (pick(4) == 0) {
          std::string ping(pick(125), 'p');
          ws::append_frame(stream, ws::opcode::ping, true, ping, key);
          expected.push_back({ev::ping, ping});
        }
      }
    }
    ws::append_frame(stream, ws::opcode::close, true, ws::close_payload(1000, "done"), mask);
    expected.push_back({ev::close, "done", 1000});

    std::vector<std::size_t> splits;
    std::size_t count = pick(3) == 0 ? stream.size() : pick(20);  // sometimes byte by byte
    for (std::size_t i = 0; i < count; ++i) splits.push_back(count == stream.size() ? i : pick(stream.size()));
    std::sort(splits.begin(), splits.end());
    ws::frame_decoder decoder(1 << 20);
    ASSERT_EQ(decode_split(decoder, stream, splits), expected) << "round " << round;
  }
}

TEST(WsFrame, PropertyRandomBytesNeverCrash) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 3000; ++round) {
    std::string stream;
    // Random bytes, sometimes after a valid prefix, sometimes a valid frame with one byte flipped.
    if (rng() % 2) stream = client_frame(ws::opcode::text, std::string(rng() % 300, 'x'));
    if (!stream.empty() && rng() % 2) stream[rng() % stream.size()] = static_cast<char>(rng());
    for (std::size_t n = rng() % 400; n > 0; --n) stream.push_back(static_cast<char>(rng()));
    std::vector<std::size_t> splits;
    for (std::size_t n = rng() % 10; n > 0; --n) splits.push_back(rng() % (stream.size() + 1));
    std::sort(splits.begin(), splits.end());
    ws::frame_decoder decoder(256);
    auto events = decode_split(decoder, stream, splits);
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (events[i].kind == ev::error) {
        EXPECT_EQ(i + 1, events.size());
        EXPECT_TRUE(events[i].code == 1002 || events[i].code == 1003 || events[i].code == 1007 ||
                    events[i].code == 1009)
            << events[i].code;
      }
      if (events[i].kind == ev::message) {
        EXPECT_LE(events[i].payload.size(), 256U);
      }
    }
    // After an error everything else is ignored.
    std::string more = "\x81\x80\x00\x00\x00\x00";
    if (!events.empty() && events.back().kind == ev::error) {
      EXPECT_EQ(decoder.decode(more).kind, ev::need_more);
    }
  }
}

// A message of many small fragments grows its buffer by doubling: a reallocation (and a copy of
// everything so far) per fragment would make a message of 1-byte fragments quadratic to reassemble.
TEST(WsFrame, ManySmallFragmentsGrowTheBufferGeometrically) {
  ws::frame_decoder decoder(std::size_t{16} << 20);
  constexpr std::size_t fragments = 20000;
  std::string stream;
  for (std::size_t i = 0; i < fragments; ++i) {
    ws::append_frame(stream, i == 0 ? ws::opcode::text : ws::opcode::continuation, i + 1 == fragments,
                     std::string(8, 'f'), mask);
  }
  std::size_t growths = 0;
  std::size_t capacity = 0;
  std::size_t pos = 0;
  ws::frame_decoder::event last = ev::need_more;
  while (pos < stream.size()) {
    std::string piece = stream.substr(pos, 14);  // a fragment a read
    auto r = decoder.decode(piece);
    pos += r.used;
    last = r.kind;
    if (decoder.buffered_bytes() != capacity) {
      ++growths;
      capacity = decoder.buffered_bytes();
    }
    if (r.kind == ev::message) break;
  }
  EXPECT_EQ(last, ev::message);
  EXPECT_EQ(decoder.payload().size(), fragments * 8);
  EXPECT_LE(growths, 40U) << "the buffer grew " << growths << " times for " << fragments << " fragments";
}

// The partial-message budget counts the buffer's capacity: a frame read in pieces of any size holds
// at most its own payload (doubling past it would hold up to twice, and fail honest clients).
TEST(WsFrame, AFrameReadInPiecesHoldsNoMoreThanItsPayload) {
  std::mt19937 random(7);
  for (std::size_t payload : {std::size_t{100000}, std::size_t{2} << 20, (std::size_t{2} << 20) + 3}) {
    for (int round = 0; round < 4; ++round) {
      ws::frame_decoder decoder(std::size_t{16} << 20);
      std::string stream;
      ws::append_frame(stream, ws::opcode::text, true, std::string(payload, 'a'), mask);
      std::size_t pos = 0;
      std::size_t most = 0;
      ws::frame_decoder::event last = ev::need_more;
      while (pos < stream.size()) {
        const std::size_t piece = std::min(stream.size() - pos, std::size_t{1} + random() % 70000);
        std::string part = stream.substr(pos, piece);
        last = decoder.decode(part).kind;
        most = std::max(most, decoder.buffered_bytes());
        pos += piece;
      }
      EXPECT_EQ(last, ev::message);
      EXPECT_EQ(decoder.payload().size(), payload);
      EXPECT_LE(most, payload + 1) << payload << " round " << round;
    }
  }
}

// What the session needs to bound partly received messages: whether one is in
// progress (for the completion deadline) and how much memory it holds (for the
// global budget), and a way to drop it.
TEST(WsFrame, PartialMessagesAreVisibleAndCanBeAbandoned) {
  ws::frame_decoder decoder(1 << 20);
  EXPECT_FALSE(decoder.mid_message());
  std::string stream;
  ws::append_frame(stream, ws::opcode::text, true, std::string(100000, 'a'), mask);
  // One header byte is already a message in progress.
  std::string first = stream.substr(0, 1);
  EXPECT_EQ(decoder.decode(first).kind, ev::need_more);
  EXPECT_TRUE(decoder.mid_message());
  // Half the payload: buffered.
  std::string half = stream.substr(1, 50000);
  EXPECT_EQ(decoder.decode(half).kind, ev::need_more);
  EXPECT_TRUE(decoder.mid_message());
  EXPECT_GE(decoder.buffered_bytes(), 49980U);  // the 14-byte header is not payload
  // The rest completes it.
  std::string rest = stream.substr(50001);
  auto r = decoder.decode(rest);
  EXPECT_EQ(r.kind, ev::message);
  EXPECT_EQ(decoder.payload().size(), 100000U);
  EXPECT_FALSE(decoder.mid_message());
  decoder.release_memory();
  EXPECT_EQ(decoder.buffered_bytes(), 0U);

  // Fragments: in progress between them, even with no partial frame.
  std::string fragments;
  ws::append_frame(fragments, ws::opcode::text, false, std::string(30000, 'b'), mask);
  EXPECT_EQ(decoder.decode(fragments).kind, ev::need_more);
  EXPECT_TRUE(decoder.mid_message());
  EXPECT_GE(decoder.buffered_bytes(), 30000U);
  decoder.abandon();
  EXPECT_FALSE(decoder.mid_message());
  EXPECT_EQ(decoder.buffered_bytes(), 0U);
  // Abandoned: nothing more is decoded.
  std::string more;
  ws::append_frame(more, ws::opcode::continuation, true, "c", mask);
  EXPECT_EQ(decoder.decode(more).kind, ev::need_more);
}
