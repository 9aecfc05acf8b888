#include "apps/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/run_folder.h"
#include "core/error.h"

namespace fs = std::filesystem;

namespace ich::app {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ICH_CHECK(in, "cannot open " << path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Fields separated by commas; a field in double quotes may hold commas and "" for a quote
// (RFC 4180, as ichseg bench writes them).
std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (quoted) {
      if (ch == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        field += ch;
      }
    } else if (ch == '"' && field.empty()) {
      quoted = true;
    } else if (ch == ',') {
      out.push_back(field);
      field.clear();
    } else if (ch != '\r') {
      field += ch;
    }
  }
  out.push_back(field);
  return out;
}

double parse_double(const std::string& s) {
  if (s.empty()) return NAN;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return (end && *end == '\0') ? v : NAN;
}

std::string format_number(double v, int precision = 4) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream os;
  os << std::setprecision(precision) << v;
  return os.str();
}

std::string images_section(const std::string& title, const fs::path& folder, size_t max_images) {
  if (!fs::is_directory(folder)) return "";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(folder)) {
    if (e.is_regular_file() && e.path().extension() == ".png") files.push_back(e.path());
  }
  if (files.empty()) return "";
  std::sort(files.begin(), files.end());
  // The newest samples are the interesting ones: keep the last max_images.
  if (files.size() > max_images) files.erase(files.begin(), files.end() - long(max_images));
  std::ostringstream os;
  os << "<h2>" << html_escape(title) << "</h2>\n<div class=\"grid\">\n";
  for (const auto& f : files) {
    os << "<figure><img alt=\"" << html_escape(f.filename().string())
       << "\" src=\"data:image/png;base64," << base64_encode(read_file(f.string()))
       << "\"><figcaption>" << html_escape(f.filename().string()) << "</figcaption></figure>\n";
  }
  os << "</div>\n";
  return os.str();
}

}  // namespace

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return int(i);
  return -1;
}

CsvTable read_csv(const std::string& path) {
  std::ifstream in(path);
  ICH_CHECK(in, "cannot open " << path);
  CsvTable t;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    auto fields = split_csv_line(line);
    if (t.columns.empty()) {
      t.columns = std::move(fields);
      continue;
    }
    ICH_CHECK(fields.size() == t.columns.size(), path << ":" << line_no << " has " << fields.size()
                                                      << " fields, the header has "
                                                      << t.columns.size());
    t.rows.push_back(std::move(fields));
  }
  ICH_CHECK(!t.columns.empty(), path << " is empty: expected a header line");
  return t;
}

std::string base64_encode(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (unsigned char)bytes[i] << 16 | (unsigned char)bytes[i + 1] << 8 |
                       (unsigned char)bytes[i + 2];
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = (unsigned char)bytes[i] << 16;
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (unsigned char)bytes[i] << 16 | (unsigned char)bytes[i + 1] << 8;
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string compare_runs_svg(const std::vector<std::pair<std::string, std::string>>& runs) {
  ICH_CHECK(!runs.empty(), "nothing to compare: pass --compare NAME=RUN_DIR at least once");
  struct Curves {
    std::vector<double> epoch, val_loss, val_dice, train_loss;
  };
  std::vector<Curves> curves;
  double last_epoch = 0;
  for (const auto& [name, dir] : runs) {
    const fs::path log_path = RunFolder(dir).log_csv();
    ICH_CHECK(fs::exists(log_path), "run '" << name << "': " << dir
                                            << " has no log.csv: is it the --out folder of "
                                               "ichseg train?");
    const CsvTable log = read_csv(log_path.string());
    Curves c;
    const auto column = [&](const char* key, std::vector<double>* out) {
      const int k = log.column(key);
      ICH_CHECK(k >= 0, log_path.string() << " has no column '" << key << "'");
      for (const auto& row : log.rows) out->push_back(std::strtod(row[size_t(k)].c_str(), nullptr));
    };
    column("epoch", &c.epoch);
    column("val_loss", &c.val_loss);
    column("val_dice", &c.val_dice);
    column("train_loss", &c.train_loss);
    for (double e : c.epoch) last_epoch = std::max(last_epoch, e);
    curves.push_back(std::move(c));
  }
  // x: epochs 1..last; a run without a row for an epoch has a gap there.
  std::vector<double> x;
  for (int e = 1; e <= int(last_epoch); ++e) x.push_back(e);
  const auto series = [&](std::vector<double> Curves::*member) {
    std::vector<Series> out;
    for (size_t r = 0; r < runs.size(); ++r) {
      Series s{runs[r].first, std::vector<double>(x.size(), NAN)};
      const Curves& c = curves[r];
      for (size_t i = 0; i < c.epoch.size(); ++i) {
        const int e = int(c.epoch[i]);
        if (e >= 1 && e <= int(x.size())) s.y[size_t(e - 1)] = (c.*member)[i];
      }
      out.push_back(std::move(s));
    }
    return out;
  };
  const std::string charts[] = {
      svg_line_chart("Validation loss", "epoch", x, series(&Curves::val_loss)),
      svg_line_chart("Validation Dice", "epoch", x, series(&Curves::val_dice)),
      svg_line_chart("Training loss", "epoch", x, series(&Curves::train_loss))};
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1560\" height=\"300\" "
        "viewBox=\"0 0 1560 300\">\n";
  for (int i = 0; i < 3; ++i)
    os << "<g transform=\"translate(" << 520 * i << ",0)\">" << charts[i] << "</g>\n";
  os << "</svg>\n";
  return os.str();
}

std::string write_report(const std::string& run_dir, const std::string& out_path_arg) {
  const RunFolder run(run_dir);
  const fs::path& dir = run.dir();
  ICH_CHECK(fs::is_directory(dir), run_dir << " is not a folder: expected a training run folder");
  const fs::path log_path = run.log_csv();
  ICH_CHECK(fs::exists(log_path), run_dir << " has no log.csv: is it the --out folder of ichseg train?");
  const CsvTable log = read_csv(log_path.string());

  auto column_values = [&](const std::string& name) {
    std::vector<double> v;
    const int c = log.column(name);
    for (const auto& row : log.rows) v.push_back(c < 0 ? NAN : parse_double(row[size_t(c)]));
    return v;
  };
  const auto epochs = column_values("epoch");

  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ichseg run "
       << html_escape(dir.filename().string()) << "</title>\n<style>"
       << "body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}"
       << "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
       << "th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
       << ".charts svg{margin:0 12px 12px 0}.grid{display:flex;flex-wrap:wrap;gap:12px}"
       << "figure{margin:0}figure img{max-width:560px;image-rendering:pixelated;border:1px solid #ccc}"
       << "figcaption{font-size:12px;color:#555}pre{background:#f6f6f6;padding:8px;overflow:auto}"
       << "</style></head><body>\n<h1>ichseg run: " << html_escape(fs::absolute(dir).string())
       << "</h1>\n";

  // Summary line: epochs, best validation Dice, total time.
  const auto dice = column_values("val_dice");
  const auto seconds = column_values("seconds");
  double best = NAN, total = 0;
  int best_epoch = -1;
  for (size_t i = 0; i < dice.size(); ++i) {
    if (std::isfinite(dice[i]) && !(dice[i] <= best)) best = dice[i], best_epoch = int(epochs[i]);
    if (i < seconds.size() && std::isfinite(seconds[i])) total += seconds[i];
  }
  html << "<p>" << log.rows.size() << " epoch(s); best validation Dice " << format_number(best)
       << (best_epoch >= 0 ? " at epoch " + std::to_string(best_epoch) : std::string())
       << "; training time " << format_number(total, 4) << " s.</p>\n";

  html << "<h2>Curves</h2>\n<div class=\"charts\">"
       << svg_line_chart("Loss", "epoch", epochs,
                         {{"train", column_values("train_loss")}, {"validation", column_values("val_loss")}})
       << svg_line_chart("Validation overlap", "epoch", epochs,
                         {{"Dice", dice}, {"Jaccard", column_values("val_jaccard")}})
       << svg_line_chart("Throughput", "epoch", epochs, {{"images/s", column_values("images_per_s")}})
       << "</div>\n";

  const fs::path eval_path = run.eval_json();
  if (fs::exists(eval_path)) {
    nlohmann::json ev;
    try {
      ev = nlohmann::json::parse(read_file(eval_path.string()));
    } catch (const nlohmann::json::exception& e) {
      ICH_FAIL(eval_path.string() << " is not valid JSON: " << e.what());
    }
    html << "<h2>Evaluation</h2>\n";
    if (ev.contains("table") && ev["table"].is_object()) {
      html << "<table><tr><th>metric</th><th>mean</th><th>std</th><th>min</th><th>max</th><th>images</th></tr>\n";
      for (const auto& [name, row] : ev["table"].items()) {
        auto cell = [&](const char* key) {
          return row.contains(key) && row[key].is_number() ? format_number(row[key].get<double>())
                                                            : std::string("n/a");
        };
        html << "<tr><td>" << html_escape(name) << "</td><td>" << cell("mean") << "</td><td>"
             << cell("std") << "</td><td>" << cell("min") << "</td><td>" << cell("max")
             << "</td><td>" << cell("count") << "</td></tr>\n";
      }
      html << "</table>\n";
    }
    html << "<details><summary>eval.json</summary><pre>" << html_escape(ev.dump(2))
         << "</pre></details>\n";
  } else {
    html << "<h2>Evaluation</h2>\n<p>No eval.json in this run folder: run <code>ichseg eval --run "
         << html_escape(run_dir) << " --json " << html_escape(eval_path.string())
         << "</code> to add the metrics table.</p>\n";
  }

  html << images_section("Predictions (overlays)", run.overlays(), 12);
  html << images_section("Validation samples: image | truth | prediction", run.samples(), 6);

  html << "<h2>Per-epoch log</h2>\n<table><tr>";
  for (const auto& c : log.columns) html << "<th>" << html_escape(c) << "</th>";
  html << "</tr>\n";
  for (const auto& row : log.rows) {
    html << "<tr>";
    for (const auto& f : row) html << "<td>" << html_escape(f) << "</td>";
    html << "</tr>\n";
  }
  html << "</table>\n";

  const fs::path config_path = run.config_json();
  if (fs::exists(config_path)) {
    html << "<h2>Configuration</h2>\n<pre>" << html_escape(read_file(config_path.string()))
         << "</pre>\n";
  }
  html << "</body></html>\n";

  const fs::path out = out_path_arg.empty() ? run.report_html() : fs::path(out_path_arg);
  const fs::path tmp = fs::path(out.string() + ".tmp");
  {
    std::ofstream o(tmp, std::ios::binary);
    ICH_CHECK(o, "cannot write " << tmp.string() << ": is the folder writable?");
    o << html.str();
    o.flush();
    ICH_CHECK(o.good(), "writing " << tmp.string() << " failed (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, out, ec);
  if (ec) {
    fs::remove(tmp);
    ICH_FAIL("cannot rename " << tmp.string() << " to " << out.string() << ": " << ec.message());
  }
  return out.string();
}

}  // namespace ich::app
