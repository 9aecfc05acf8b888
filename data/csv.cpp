#include "data/csv.h"

#include <cerrno>
#include <cstdlib>

#include "core/error.h"
#include "data/fileutil.h"

namespace ich::data {

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    fields.push_back(
        trim(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return fields;
}

}  // namespace

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int>(i);
  }
  std::string have;
  for (const auto& h : header) have += (have.empty() ? "" : ",") + h;
  ICH_FAIL(path << " has no column '" << name << "' (its header is: " << have << ")");
}

bool CsvTable::has_column(const std::string& name) const {
  for (const auto& h : header) {
    if (h == name) return true;
  }
  return false;
}

CsvTable parse_csv(const std::string& text, const std::string& path) {
  CsvTable table;
  table.path = path;
  size_t pos = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) pos = 3;
  int line_number = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_number;
    if (line.empty()) continue;
    std::vector<std::string> fields = split_fields(line);
    if (table.header.empty()) {
      table.header = std::move(fields);
      continue;
    }
    ICH_CHECK(fields.size() == table.header.size(), path << " line " << line_number << " has "
                                                         << fields.size() << " fields, the header "
                                                         << table.header.size());
    table.rows.push_back(std::move(fields));
    table.row_lines.push_back(line_number);
  }
  ICH_CHECK(!table.header.empty(), path << " is empty (no header line)");
  return table;
}

CsvTable read_csv(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return parse_csv(std::string(bytes.begin(), bytes.end()), path);
}

long long csv_int(const CsvTable& table, size_t row, int column) {
  const std::string& s = table.rows[row][column];
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  // A float-formatted integer ("1.0", as some exports write) is accepted when it is whole.
  if (!s.empty() && end && *end == '.') {
    const double d = std::strtod(s.c_str(), &end);
    if (*end == '\0' && d == static_cast<double>(static_cast<long long>(d))) {
      return static_cast<long long>(d);
    }
  }
  ICH_CHECK(!s.empty() && end && *end == '\0' && errno == 0,
            table.path << " line " << table.row_lines[row] << ": column '" << table.header[column]
                       << "' holds '" << s << "', not an integer");
  return v;
}

}  // namespace ich::data
