#include "data/augment.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace ich::data {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Catmull-Rom weights of the four control points around a fractional position t.
void cubic_weights(double t, double w[4]) {
  const double t2 = t * t, t3 = t2 * t;
  w[0] = 0.5 * (-t3 + 2 * t2 - t);
  w[1] = 0.5 * (3 * t3 - 5 * t2 + 2);
  w[2] = 0.5 * (-3 * t3 + 4 * t2 + t);
  w[3] = 0.5 * (t3 - t2);
}

// Interpolation matrix (n, grid): row i holds the weight of each control point for pixel i;
// control point a sits at pixel a * (n - 1) / (grid - 1).
std::vector<double> interpolation_weights(int n, int grid) {
  std::vector<double> m(size_t(n) * grid, 0.0);
  for (int i = 0; i < n; ++i) {
    const double t = n > 1 ? double(i) * (grid - 1) / (n - 1) : 0.0;
    const int a = std::min(static_cast<int>(std::floor(t)), grid - 2);
    double w[4];
    cubic_weights(t - a, w);
    for (int k = 0; k < 4; ++k) {
      const int c = std::clamp(a - 1 + k, 0, grid - 1);  // edges repeat the end control point
      m[size_t(i) * grid + c] += w[k];
    }
  }
  return m;
}

float bilinear(const Image8& img, double x, double y) {
  const int x0 = static_cast<int>(std::floor(x)), y0 = static_cast<int>(std::floor(y));
  const double fx = x - x0, fy = y - y0;
  auto px = [&](int xi, int yi) -> double {
    if (xi < 0 || yi < 0 || xi >= img.w || yi >= img.h) return 0.0;
    return img.pixels[size_t(yi) * img.w + xi];
  };
  const double top = px(x0, y0) * (1 - fx) + px(x0 + 1, y0) * fx;
  const double bottom = px(x0, y0 + 1) * (1 - fx) + px(x0 + 1, y0 + 1) * fx;
  return static_cast<float>((top * (1 - fy) + bottom * fy) / 255.0);
}

float nearest(const Image8& img, double x, double y) {
  const int xi = static_cast<int>(std::lround(x)), yi = static_cast<int>(std::lround(y));
  if (xi < 0 || yi < 0 || xi >= img.w || yi >= img.h) return 0.0f;
  return img.pixels[size_t(yi) * img.w + xi] ? 1.0f : 0.0f;
}

}  // namespace

void augment_crop(const Image8& image, const Image8& mask, int x0, int y0, int w, int h,
                  const AugmentOptions& o, Rng& rng, float* out_image, float* out_mask) {
  ICH_CHECK(image.w == mask.w && image.h == mask.h, "image and mask sizes differ");
  ICH_CHECK(o.elastic_grid >= 2, "the elastic grid needs at least 2 control points per side");
  const size_t n = size_t(w) * h;
  if (!o.geometric()) {
    // (h, w) window copied as is
    for (int r = 0; r < h; ++r) {
      for (int c = 0; c < w; ++c) {
        const int sx = x0 + c, sy = y0 + r;
        const bool inside = sx >= 0 && sy >= 0 && sx < image.w && sy < image.h;
        const size_t src = size_t(sy) * image.w + sx;
        out_image[size_t(r) * w + c] = inside ? image.pixels[src] / 255.0f : 0.0f;
        out_mask[size_t(r) * w + c] = inside && mask.pixels[src] ? 1.0f : 0.0f;
      }
    }
  } else {
    const bool flip_h = o.flip_horizontal > 0 && rng.chance(o.flip_horizontal);
    const bool flip_v = o.flip_vertical > 0 && rng.chance(o.flip_vertical);
    const double angle =
        o.rotate_degrees > 0 ? rng.uniform(-o.rotate_degrees, o.rotate_degrees) * kPi / 180.0 : 0.0;
    const double ca = std::cos(angle), sa = std::sin(angle);
    std::vector<double> disp_x, disp_y;  // (h, w)
    if (o.elastic_sigma > 0) {
      const int g = o.elastic_grid;
      std::vector<double> ctrl_x(size_t(g) * g), ctrl_y(size_t(g) * g);  // (g, g)
      for (auto& v : ctrl_x) v = o.elastic_sigma * rng.normal();
      for (auto& v : ctrl_y) v = o.elastic_sigma * rng.normal();
      const std::vector<double> wr = interpolation_weights(h, g), wc = interpolation_weights(w, g);
      // Separable: first along columns (g, w), then along rows (h, w).
      std::vector<double> tmp_x(size_t(g) * w, 0.0), tmp_y(size_t(g) * w, 0.0);
      for (int a = 0; a < g; ++a) {
        for (int c = 0; c < w; ++c) {
          for (int b = 0; b < g; ++b) {
            tmp_x[size_t(a) * w + c] += wc[size_t(c) * g + b] * ctrl_x[size_t(a) * g + b];
            tmp_y[size_t(a) * w + c] += wc[size_t(c) * g + b] * ctrl_y[size_t(a) * g + b];
          }
        }
      }
      disp_x.assign(n, 0.0);
      disp_y.assign(n, 0.0);
      for (int r = 0; r < h; ++r) {
        for (int a = 0; a < g; ++a) {
          const double wra = wr[size_t(r) * g + a];
          for (int c = 0; c < w; ++c) {
            disp_x[size_t(r) * w + c] += wra * tmp_x[size_t(a) * w + c];
            disp_y[size_t(r) * w + c] += wra * tmp_y[size_t(a) * w + c];
          }
        }
      }
    }
    const double cx = (w - 1) * 0.5, cy = (h - 1) * 0.5;
    for (int r = 0; r < h; ++r) {
      for (int c = 0; c < w; ++c) {
        double dx = c - cx, dy = r - cy;
        if (flip_h) dx = -dx;
        if (flip_v) dy = -dy;
        double sx = ca * dx - sa * dy, sy = sa * dx + ca * dy;
        if (!disp_x.empty()) {
          sx += disp_x[size_t(r) * w + c];
          sy += disp_y[size_t(r) * w + c];
        }
        const double X = x0 + cx + sx, Y = y0 + cy + sy;
        out_image[size_t(r) * w + c] = bilinear(image, X, Y);
        out_mask[size_t(r) * w + c] = nearest(mask, X, Y);
      }
    }
  }
  if (o.noise_std > 0) {
    for (size_t i = 0; i < n; ++i) {
      const double v = out_image[i] + o.noise_std * rng.normal();
      out_image[i] = static_cast<float>(std::clamp(v, 0.0, 1.0));
    }
  }
}

}  // namespace ich::data
