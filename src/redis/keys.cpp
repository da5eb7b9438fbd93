#include "keys.hpp"

namespace otsync::redis {
namespace {

// Braces would end a hash tag early (and let two documents share one): escape them.
void append_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    if (c == '%') {
      out += "%25";
    } else if (c == '{') {
      out += "%7B";
    } else if (c == '}') {
      out += "%7D";
    } else {
      out += c;
    }
  }
}

}  // namespace

std::string doc_tag(std::string_view collection, std::string_view id) {
  // The length prefix keeps "a/b"+"c" apart from "a"+"b/c". Appended piece by
  // piece: GCC 12 -O3 warns falsely (-Wrestrict) on "{" + std::string.
  std::string tag(1, '{');
  tag += std::to_string(collection.size());
  tag += ':';
  append_escaped(tag, collection);
  tag += '/';
  append_escaped(tag, id);
  tag += '}';
  return tag;
}

std::string op_channel(std::string_view key_prefix, std::string_view collection, std::string_view id) {
  std::string channel(key_prefix);
  channel += "ops:";
  channel += doc_tag(collection, id);
  return channel;
}

std::string presence_channel(std::string_view key_prefix, std::string_view channel) {
  std::string name(key_prefix);
  name += "presence:";
  name += channel;
  return name;
}

std::string presence_instances_channel(std::string_view key_prefix) {
  std::string name(key_prefix);
  name += "presence-instances";
  return name;
}

std::string publisher_tag(std::string_view instance_id) {
  if (instance_id.empty()) return {};
  std::string tag = "i:";
  tag += instance_id;
  tag += '\n';
  return tag;
}

}  // namespace otsync::redis
