#include "data/phantom.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "data/fileutil.h"
#include "data/rng.h"
#include "data/workers.h"

namespace fs = std::filesystem;

namespace ich::data {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kFieldOfViewMm = 230.0;   // a typical head CT field of view
constexpr double kSliceThicknessMm = 5.0;  // as the CT-ICH scans

// HU ranges per tissue, indexed by Tissue.
constexpr float kHuLo[kTissueCount] = {-1024, 20, 700, 0, 0, 33, 22, 30, 0, 50, 20};
constexpr float kHuHi[kTissueCount] = {-950, 60, 1500, 15, 15, 45, 33, 42, 15, 90, 60};
const char* const kTissueNames[kTissueCount] = {"air",       "scalp", "skull",   "csf",
                                                "sulcus",    "grey",  "white",   "deep-grey",
                                                "ventricle", "blood", "fracture"};

double wrap_angle(double a) {
  while (a > kPi) a -= 2 * kPi;
  while (a < -kPi) a += 2 * kPi;
  return a;
}

struct Sulcus {
  double theta, depth, half_width;
};

struct Lesion {
  int type = kIntraparenchymal;
  double z0 = 0, zh = 0.1;  // centre and half extent along the head's axis (z in [-1, 1])
  double theta0 = 0, dtheta = 0.3, thick = 0.1;  // EDH, SDH, SAH (angles in the p,q plane)
  double p0 = 0, q0 = 0, r0 = 0.1;               // IPH
  double harmonic_amp[3] = {0, 0, 0}, harmonic_phase[3] = {0, 0, 0};
  double level = 0;  // IVH: blood where q > level (posterior = dependent, patient supine)
  double hu = 70;
  bool fracture = false;  // EDH: a fracture line through the skull at theta0
};

// Everything that describes one patient's head; drawn once from the patient's generator.
struct Head {
  double a = 0.7, b = 0.85;  // semi-axes (x: left-right, y: anterior-posterior), in half-FOV units
  double cx = 0, cy = 0, angle = 0;
  double z_bottom = -0.4, z_top = 0.9;
  double skull = 0.07, scalp = 0.04, csf_gap = 0.015;
  double cortex = 0.08, gyri_amp = 0.025, gyri_phase = 0;
  int gyri = 8;
  std::vector<Sulcus> sulci;
  double ventricle_scale = 1.0;
  double base_hu[kTissueCount] = {};
  std::vector<Lesion> lesions;
};

Head draw_head(Rng& r) {
  Head h;
  h.a = r.uniform(0.64, 0.72);
  h.b = r.uniform(0.80, 0.87);
  h.cx = r.uniform(-0.03, 0.03);
  h.cy = r.uniform(-0.03, 0.03);
  h.angle = r.uniform(-0.12, 0.12);
  h.z_bottom = r.uniform(-0.45, -0.3);
  h.z_top = r.uniform(0.82, 0.9);
  h.skull = r.uniform(0.06, 0.08);
  h.cortex = r.uniform(0.07, 0.10);
  h.gyri = r.range(7, 10);
  h.gyri_phase = r.uniform(0, 2 * kPi);
  const int n_sulci = r.range(22, 30);
  for (int s = 0; s < n_sulci; ++s) {
    Sulcus su;
    su.theta = wrap_angle(2 * kPi * (s + r.uniform(-0.3, 0.3)) / n_sulci);
    su.depth = r.uniform(0.05, 0.11);
    su.half_width = r.uniform(0.005, 0.009);
    h.sulci.push_back(su);
  }
  h.ventricle_scale = r.uniform(0.8, 1.25);
  h.base_hu[kTissueAir] = -1000;
  h.base_hu[kTissueScalp] = float(r.uniform(32, 45));
  h.base_hu[kTissueSkull] = 0;  // the skull's value is a profile across its thickness
  h.base_hu[kTissueCsf] = float(r.uniform(5, 9));
  h.base_hu[kTissueSulcus] = h.base_hu[kTissueCsf];
  h.base_hu[kTissueGrey] = float(r.uniform(37, 40));
  h.base_hu[kTissueWhite] = float(r.uniform(26, 29));
  h.base_hu[kTissueDeepGrey] = float(r.uniform(35, 38));
  h.base_hu[kTissueVentricle] = h.base_hu[kTissueCsf];
  h.base_hu[kTissueFracture] = h.base_hu[kTissueScalp];
  return h;
}

Lesion draw_lesion(Rng& r, const Head& h, int type) {
  Lesion l;
  l.type = type;
  l.hu = r.uniform(62, 78);
  // A centre well inside the scanned range, so that every lesion shows on some slice.
  const double zlo = h.z_bottom + 0.25, zhi = h.z_top - 0.25;
  l.z0 = r.uniform(zlo, zhi);
  l.theta0 = r.uniform(-kPi, kPi);
  switch (type) {
    case kEpidural:
      l.dtheta = r.uniform(0.25, 0.45);
      l.thick = r.uniform(0.08, 0.14);
      l.zh = r.uniform(0.12, 0.25);
      l.fracture = r.chance(0.6);
      break;
    case kSubdural:
      l.dtheta = r.uniform(0.7, 1.2);
      l.thick = r.uniform(0.03, 0.055);
      l.zh = r.uniform(0.25, 0.45);
      break;
    case kIntraparenchymal: {
      const double rho = r.uniform(0.15, 0.55), phi = r.uniform(-kPi, kPi);
      l.p0 = rho * std::cos(phi);
      l.q0 = rho * std::sin(phi);
      l.r0 = r.uniform(0.07, 0.16);
      l.zh = l.r0 * r.uniform(0.9, 1.6);
      for (int k = 0; k < 3; ++k) {
        l.harmonic_amp[k] = r.uniform(-0.18, 0.18);
        l.harmonic_phase[k] = r.uniform(0, 2 * kPi);
      }
      break;
    }
    case kIntraventricular:
      l.z0 = r.uniform(0.18, 0.32);
      l.zh = r.uniform(0.1, 0.2);
      l.level = r.uniform(-0.05, 0.15);
      break;
    case kSubarachnoid:
      l.dtheta = r.uniform(0.5, 1.2);
      l.zh = r.uniform(0.2, 0.4);
      break;
    default:
      break;
  }
  return l;
}

// The hard phantom's bleeds: the same five shapes, smaller, thinner, over fewer slices, and
// only 10-20 HU brighter than grey matter.
Lesion draw_lesion_hard(Rng& r, const Head& h, int type) {
  Lesion l;
  l.type = type;
  l.hu = h.base_hu[kTissueGrey] + r.uniform(10, 20);
  const double zlo = h.z_bottom + 0.25, zhi = h.z_top - 0.25;
  l.z0 = r.uniform(zlo, zhi);
  l.theta0 = r.uniform(-kPi, kPi);
  switch (type) {
    case kEpidural:
      l.dtheta = r.uniform(0.15, 0.3);
      l.thick = r.uniform(0.03, 0.06);
      l.zh = r.uniform(0.04, 0.08);
      l.fracture = r.chance(0.6);
      break;
    case kSubdural:
      l.dtheta = r.uniform(0.5, 1.0);
      l.thick = r.uniform(0.012, 0.03);
      l.zh = r.uniform(0.05, 0.1);
      break;
    case kIntraparenchymal: {
      const double rho = r.uniform(0.15, 0.6), phi = r.uniform(-kPi, kPi);
      l.p0 = rho * std::cos(phi);
      l.q0 = rho * std::sin(phi);
      l.r0 = r.uniform(0.03, 0.07);
      l.zh = std::max(0.035, l.r0 * r.uniform(0.8, 1.2));
      for (int k = 0; k < 3; ++k) {
        l.harmonic_amp[k] = r.uniform(-0.2, 0.2);
        l.harmonic_phase[k] = r.uniform(0, 2 * kPi);
      }
      break;
    }
    case kIntraventricular:
      l.z0 = r.uniform(0.18, 0.32);
      l.zh = r.uniform(0.04, 0.08);
      l.level = r.uniform(0.1, 0.22);
      break;
    case kSubarachnoid:
      l.dtheta = r.uniform(0.15, 0.4);
      l.zh = r.uniform(0.05, 0.09);
      break;
    default:
      break;
  }
  return l;
}

// The per-voxel model of one slice at height z: tissue and (if blood) which lesion.
struct SliceModel {
  const Head& h;
  double z, s;  // head height and the cross-section scale sqrt(1 - z^2)
  double skull_t, scalp_t, gap_t;

  SliceModel(const Head& head, double z_) : h(head), z(z_) {
    s = std::sqrt(std::max(0.0, 1.0 - z * z));
    // Constant physical thickness: in the shrinking cross-section it is a larger fraction.
    const double sc = std::max(s, 0.2);
    skull_t = std::min(h.skull / sc, 0.6);
    scalp_t = h.scalp / sc;
    gap_t = h.csf_gap / sc;
  }

  // Tissue at normalised image coordinates (x, y) in [-1, 1]; *blood_of is the index of the
  // lesion that covers it, or -1.
  int tissue_at(double x, double y, int* blood_of, bool* fractured) const {
    *blood_of = -1;
    *fractured = false;
    if (s < 0.15) return kTissueAir;
    const double ca = std::cos(h.angle), sa = std::sin(h.angle);
    const double u = ca * (x - h.cx) + sa * (y - h.cy);
    const double v = -sa * (x - h.cx) + ca * (y - h.cy);
    const double p = u / (h.a * s), q = v / (h.b * s);
    const double rho = std::sqrt(p * p + q * q);
    if (rho > 1.0 + scalp_t) return kTissueAir;
    if (rho > 1.0) return kTissueScalp;
    const double theta = std::atan2(q, p);
    const double rho_in = 1.0 - skull_t;
    if (rho > rho_in) {
      for (size_t i = 0; i < h.lesions.size(); ++i) {
        const Lesion& l = h.lesions[i];
        if (!l.fracture || std::fabs(z - l.z0) > l.zh) continue;
        if (std::fabs(wrap_angle(theta - l.theta0)) * rho < 0.008) {
          *fractured = true;
          return kTissueFracture;
        }
      }
      return kTissueSkull;
    }
    const double rho_brain = rho_in - gap_t;

    // Extra-axial blood first: it lies against the inner table and displaces the brain.
    for (size_t i = 0; i < h.lesions.size(); ++i) {
      const Lesion& l = h.lesions[i];
      if (l.type != kEpidural && l.type != kSubdural) continue;
      const double dz = (z - l.z0) / l.zh;
      if (std::fabs(dz) >= 1.0) continue;
      const double dt = std::fabs(wrap_angle(theta - l.theta0)) / l.dtheta;
      if (dt >= 1.0) continue;
      const double along = l.type == kEpidural ? (1.0 - dt * dt)  // lens: thickest in the middle
                                               : std::min(1.0, 4.0 * (1.0 - dt));  // crescent
      const double t = l.thick * along * std::sqrt(1.0 - dz * dz);
      if (rho > rho_in - t) {
        *blood_of = static_cast<int>(i);
        return kTissueBlood;
      }
    }
    if (rho > rho_brain) return kTissueCsf;

    int tissue = kTissueWhite;
    const double rho_gw =
        rho_brain - h.cortex - h.gyri_amp * std::sin(h.gyri * theta + h.gyri_phase);
    if (rho > rho_gw) tissue = kTissueGrey;
    for (const Sulcus& su : h.sulci) {
      if (rho > rho_brain - su.depth &&
          std::fabs(wrap_angle(theta - su.theta)) * rho < su.half_width * 2.0 / (1.0 + s)) {
        tissue = kTissueSulcus;
        break;
      }
    }
    // Interhemispheric fissure: front and back of the midline, above the skull base.
    if (std::fabs(u) < 0.006 && (q < -0.3 || q > 0.4) && z > -0.2) tissue = kTissueSulcus;
    // Deep grey nuclei and ventricles, mid-height only.
    if (z > -0.15 && z < 0.25) {
      for (int side = -1; side <= 1; side += 2) {
        const double dp = (p - side * 0.25) / 0.09, dq = (q - 0.02) / 0.16;
        if (dp * dp + dq * dq < 1.0) tissue = kTissueDeepGrey;
      }
    }
    const double vz = (z - 0.25) / 0.22;  // lateral ventricles around z = 0.25
    if (std::fabs(vz) < 1.0) {
      const double w = std::sqrt(1.0 - vz * vz);
      for (int side = -1; side <= 1; side += 2) {
        // Frontal horns close to the midline, bodies diverging backwards.
        const double tilt = side * 0.18;
        const double pp = p - side * 0.11 * h.ventricle_scale, qq = q + 0.05;
        const double rp = std::cos(tilt) * pp + std::sin(tilt) * qq;
        const double rq = -std::sin(tilt) * pp + std::cos(tilt) * qq;
        const double ep = rp / (0.055 * h.ventricle_scale * w), eq = rq / (0.32 * std::sqrt(w));
        if (ep * ep + eq * eq < 1.0) tissue = kTissueVentricle;
      }
    }
    if (z > -0.1 && z < 0.15 && std::fabs(p) < 0.018 && std::fabs(q) < 0.12)
      tissue = kTissueVentricle;

    // Intra-axial blood.
    for (size_t i = 0; i < h.lesions.size(); ++i) {
      const Lesion& l = h.lesions[i];
      const double dz = (z - l.z0) / l.zh;
      if (std::fabs(dz) >= 1.0) continue;
      bool inside = false;
      if (l.type == kIntraparenchymal) {
        const double dp = p - l.p0, dq = q - l.q0;
        const double d = std::sqrt(dp * dp + dq * dq);
        const double phi = std::atan2(dq, dp);
        double radius = l.r0 * std::sqrt(1.0 - dz * dz);
        double shape = 1.0;
        for (int k = 0; k < 3; ++k)
          shape += l.harmonic_amp[k] * std::cos((k + 2) * phi + l.harmonic_phase[k]);
        radius *= shape;
        inside = d < radius && rho < rho_brain;
      } else if (l.type == kIntraventricular) {
        inside = tissue == kTissueVentricle && q > l.level;
      } else if (l.type == kSubarachnoid) {
        inside = tissue == kTissueSulcus && std::fabs(wrap_angle(theta - l.theta0)) < l.dtheta;
      }
      if (inside) {
        *blood_of = static_cast<int>(i);
        return kTissueBlood;
      }
    }
    return tissue;
  }
};

// The skull's HU across its thickness: bright tables, darker diploe in the middle.
double skull_hu(double depth_fraction) {
  const double d = std::sin(kPi * std::clamp(depth_fraction, 0.0, 1.0));
  return 1420.0 - 620.0 * d * d;
}

// One to three lesions for a patient with hemorrhage (none when healthy). The first lesion's
// subtype cycles over the patients with hemorrhage, so that any five of them show all five
// subtypes; further lesions are of any subtype.
void draw_lesions(Rng& r, Head& head, const SynthOptions& o, int patient, bool healthy) {
  head.lesions.clear();
  if (healthy) return;
  const int hemorrhage_index =
      (patient - 1) - static_cast<int>(std::floor((patient - 1) * o.healthy_fraction));
  const int n = r.range(1, 3);
  for (int i = 0; i < n; ++i) {
    const int type = i == 0 ? hemorrhage_index % kSubtypeCount : r.range(0, kSubtypeCount - 1);
    head.lesions.push_back(o.difficulty == Difficulty::hard ? draw_lesion_hard(r, head, type)
                                                            : draw_lesion(r, head, type));
  }
}

// The HU of the model at (x, y) of a slice, before noise.
double model_hu(const Head& head, const SliceModel& model, int tissue, int blood_of, double x,
                double y) {
  if (tissue == kTissueBlood) return head.lesions[blood_of].hu;
  if (tissue != kTissueSkull) return head.base_hu[tissue];
  const double ca = std::cos(head.angle), sa = std::sin(head.angle);
  const double u = ca * (x - head.cx) + sa * (y - head.cy);
  const double v = -sa * (x - head.cx) + ca * (y - head.cy);
  const double p = u / (head.a * model.s), q = v / (head.b * model.s);
  return skull_hu((1.0 - std::sqrt(p * p + q * q)) / model.skull_t);
}

// Partial volume of the hard phantom: samples per voxel side in-plane and through the slice.
constexpr int kSubXY = 2, kSubZ = 3;

// Slice k of a hard patient without noise: each voxel the mean of its samples; the mask is
// 1 where at least half of them are blood. Returns whether the slice holds any mask voxel.
bool render_hard_slice(const Head& head, const PhantomPatient& out, int k, double z_bottom_of_k,
                       double dz, std::vector<double>* hu, std::vector<int8_t>* lesion_of,
                       PhantomPatient* write, bool* fractured) {
  const size_t plane = size_t(out.nx) * out.ny;
  std::vector<SliceModel> models;
  for (int sz = 0; sz < kSubZ; ++sz)
    models.emplace_back(head, z_bottom_of_k + (sz + 0.5) / kSubZ * dz);
  constexpr int kSamples = kSubXY * kSubXY * kSubZ;
  bool any = false;
  for (int j = 0; j < out.ny; ++j) {
    for (int i = 0; i < out.nx; ++i) {
      double sum = 0;
      int blood = 0, lesion = -1, centre = kTissueAir;
      for (int sz = 0; sz < kSubZ; ++sz)
        for (int sy = 0; sy < kSubXY; ++sy)
          for (int sx = 0; sx < kSubXY; ++sx) {
            const double x = (i + (sx + 0.5) / kSubXY) / out.nx * 2.0 - 1.0;
            const double y = (j + (sy + 0.5) / kSubXY) / out.ny * 2.0 - 1.0;
            int blood_of = -1;
            bool frac = false;
            const int t = models[sz].tissue_at(x, y, &blood_of, &frac);
            sum += model_hu(head, models[sz], t, blood_of, x, y);
            if (blood_of >= 0) ++blood, lesion = blood_of;
            *fractured |= frac;
            if (sz == kSubZ / 2 && sy == 0 && sx == 0) centre = t;
          }
      const size_t idx = k * plane + size_t(j) * out.nx + i;
      const bool is_blood = 2 * blood >= kSamples;
      (*hu)[idx] = sum / kSamples;
      (*lesion_of)[idx] = static_cast<int8_t>(is_blood ? lesion : -1);
      write->mask[idx] = is_blood ? 1 : 0;
      write->tissue[idx] = static_cast<uint8_t>(
          is_blood ? kTissueBlood : (centre == kTissueBlood ? kTissueGrey : centre));
      any |= is_blood;
    }
  }
  return any;
}

// Correlated noise (white noise smoothed by a 3x3 binomial kernel, rescaled to sigma HU) and
// streaks through the head, added to slice k's HU (ny, nx).
void add_hard_noise(const SynthOptions& o, int patient, int k, double z, const PhantomPatient& out,
                    double* hu) {
  const int nx = out.nx, ny = out.ny;
  Rng noise(mix({o.seed, uint64_t(patient), 2, uint64_t(k)}));
  std::vector<double> white(size_t(nx) * ny);
  for (double& v : white) v = noise.normal();
  const auto at = [&](int j, int i) {
    return white[size_t(std::clamp(j, 0, ny - 1)) * nx + std::clamp(i, 0, nx - 1)];
  };
  // The binomial kernel keeps 0.375 of the standard deviation of white noise.
  const double scale = o.noise_hu / 0.375;
  Rng streaks(mix({o.seed, uint64_t(patient), 3, uint64_t(k)}));
  const bool base = z < 0.0;  // near the skull base: more and stronger streaks
  // --noise 0 is an artifact-free image: no streaks either.
  const int n_streaks =
      o.noise_hu > 0 ? streaks.range(1, 3) + (base ? streaks.range(1, 3) : 0) : 0;
  struct Streak {
    double nx_, ny_, offset, amp, width;
  };
  std::vector<Streak> lines;
  for (int s = 0; s < n_streaks; ++s) {
    const double a = streaks.uniform(0, kPi);
    const double px = (0.5 + streaks.uniform(-0.15, 0.15)) * nx;
    const double py = (0.5 + streaks.uniform(-0.15, 0.15)) * ny;
    const double amp = (streaks.chance(0.5) ? 1 : -1) * streaks.uniform(8, 30) * (base ? 1 : 0.6);
    const double width = streaks.uniform(0.6, 1.5) * nx / 256.0;
    lines.push_back({std::sin(a), -std::cos(a), px * std::sin(a) - py * std::cos(a), amp,
                     std::max(width, 0.5)});
  }
  const size_t plane = size_t(nx) * ny;
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) {
      const double smooth = (4 * at(j, i) + 2 * (at(j - 1, i) + at(j + 1, i) + at(j, i - 1) +
                                                  at(j, i + 1)) +
                             at(j - 1, i - 1) + at(j - 1, i + 1) + at(j + 1, i - 1) +
                             at(j + 1, i + 1)) /
                            16.0;
      double v = hu[size_t(j) * nx + i] + scale * smooth;
      if (out.tissue[k * plane + size_t(j) * nx + i] != kTissueAir) {
        for (const Streak& l : lines) {
          const double d = (i + 0.5) * l.nx_ + (j + 0.5) * l.ny_ - l.offset;
          v += l.amp * std::exp(-d * d / (2 * l.width * l.width));
        }
      }
      hu[size_t(j) * nx + i] = v;
    }
}

// The hard phantom of a patient whose head is drawn (see phantom.h).
void render_hard(const SynthOptions& o, int patient, bool healthy, Rng& r, Head& head,
                 PhantomPatient* out) {
  const size_t plane = size_t(out->nx) * out->ny;
  const double dz = (head.z_top - head.z_bottom) / out->nz;
  std::vector<double> hu(plane * out->nz);
  std::vector<int8_t> lesion_of(plane * out->nz, -1);
  std::vector<uint8_t> fractured(out->nz, 0);
  out->tissue.assign(plane * out->nz, kTissueAir);
  out->mask.assign(plane * out->nz, 0);
  for (int attempt = 0; attempt < 16; ++attempt) {
    draw_lesions(r, head, o, patient, healthy);
    bool any_blood = false;
    for (int k = 0; k < out->nz; ++k) {
      bool frac = false;
      any_blood |= render_hard_slice(head, *out, k, head.z_bottom + k * dz, dz, &hu, &lesion_of,
                                     out, &frac);
      fractured[k] = frac;
    }
    if (healthy || any_blood) break;
  }
  out->hu.resize(plane * out->nz);
  out->diagnosis.resize(out->nz);
  for (int k = 0; k < out->nz; ++k) {
    add_hard_noise(o, patient, k, head.z_bottom + (k + 0.5) * dz, *out, hu.data() + k * plane);
    SliceDiagnosis& d = out->diagnosis[k];
    d.patient = patient;
    d.slice = k + 1;
    for (size_t p = 0; p < plane; ++p) {
      const size_t idx = k * plane + p;
      if (lesion_of[idx] >= 0) d.subtype[head.lesions[lesion_of[idx]].type] = true;
      out->hu[idx] = static_cast<int16_t>(std::lround(std::clamp(hu[idx], -1024.0, 3071.0)));
    }
    d.no_hemorrhage = true;
    for (bool s : d.subtype) d.no_hemorrhage &= !s;
    d.fracture = fractured[k] != 0;
  }
}

}  // namespace

const char* difficulty_name(Difficulty d) {
  return d == Difficulty::hard ? "hard" : "easy";
}

Difficulty parse_difficulty(const std::string& name) {
  if (name == "easy") return Difficulty::easy;
  if (name == "hard") return Difficulty::hard;
  throw Error("synth: --difficulty '" + name + "' is not one of easy, hard");
}

const char* tissue_name(int tissue) {
  return kTissueNames[tissue];
}

void tissue_hu_range(int tissue, float* lo, float* hi) {
  *lo = kHuLo[tissue];
  *hi = kHuHi[tissue];
}

PhantomPatient make_phantom_patient(const SynthOptions& o, int patient) {
  ICH_CHECK(o.size >= 16 && o.size <= 2048,
            "synth: --size " << o.size << " is out of range (16..2048)");
  ICH_CHECK(o.slices >= 1 && o.slices <= 1000,
            "synth: --slices " << o.slices << " is out of range (1..1000)");
  ICH_CHECK(o.slice_jitter >= 0, "synth: the slice jitter must be >= 0");
  ICH_CHECK(o.healthy_fraction >= 0.0 && o.healthy_fraction <= 1.0,
            "synth: the healthy fraction " << o.healthy_fraction << " is not in [0, 1]");
  ICH_CHECK(o.noise_hu >= 0.0 && o.noise_hu <= 200.0,
            "synth: noise " << o.noise_hu << " HU is out of range");
  Rng r(mix({o.seed, uint64_t(patient), 1}));
  PhantomPatient out;
  out.patient = patient;
  out.nx = out.ny = o.size;
  out.nz = std::max(1, o.slices + (o.slice_jitter ? r.range(-o.slice_jitter, o.slice_jitter) : 0));
  out.spacing[0] = out.spacing[1] = kFieldOfViewMm / o.size;
  out.spacing[2] = kSliceThicknessMm;

  Head head = draw_head(r);
  const bool healthy =
      std::floor(patient * o.healthy_fraction) > std::floor((patient - 1) * o.healthy_fraction);
  if (o.difficulty == Difficulty::hard) {
    render_hard(o, patient, healthy, r, head, &out);
    return out;
  }
  const auto slice_z = [&](int k) {
    return head.z_bottom + (k + 0.5) / out.nz * (head.z_top - head.z_bottom);
  };

  const size_t plane = size_t(out.nx) * out.ny;
  out.tissue.assign(plane * out.nz, kTissueAir);
  out.mask.assign(plane * out.nz, 0);
  std::vector<int8_t> lesion_of(plane * out.nz, -1);
  std::vector<uint8_t> fractured(out.nz, 0);

  // Draw lesions until at least one blood voxel lands on a slice (a tiny or thin stack
  // can miss a lesion); healthy patients get none.
  for (int attempt = 0; attempt < 16; ++attempt) {
    draw_lesions(r, head, o, patient, healthy);
    bool any_blood = false;
    for (int k = 0; k < out.nz; ++k) {
      const SliceModel model(head, slice_z(k));
      for (int j = 0; j < out.ny; ++j) {
        const double y = (j + 0.5) / out.ny * 2.0 - 1.0;
        for (int i = 0; i < out.nx; ++i) {
          const double x = (i + 0.5) / out.nx * 2.0 - 1.0;
          int blood_of = -1;
          bool frac = false;
          const size_t idx = k * plane + size_t(j) * out.nx + i;
          out.tissue[idx] = static_cast<uint8_t>(model.tissue_at(x, y, &blood_of, &frac));
          lesion_of[idx] = static_cast<int8_t>(blood_of);
          out.mask[idx] = blood_of >= 0 ? 1 : 0;
          any_blood |= blood_of >= 0;
          if (frac) fractured[k] = 1;
        }
      }
    }
    if (healthy || any_blood) break;
    std::fill(fractured.begin(), fractured.end(), 0);
  }

  // HU values with noise; each slice has its own generator.
  out.hu.resize(plane * out.nz);
  out.diagnosis.resize(out.nz);
  for (int k = 0; k < out.nz; ++k) {
    Rng noise(mix({o.seed, uint64_t(patient), 2, uint64_t(k)}));
    const SliceModel model(head, slice_z(k));
    SliceDiagnosis& d = out.diagnosis[k];
    d.patient = patient;
    d.slice = k + 1;
    for (int j = 0; j < out.ny; ++j) {
      const double y = (j + 0.5) / out.ny * 2.0 - 1.0;
      for (int i = 0; i < out.nx; ++i) {
        const size_t idx = k * plane + size_t(j) * out.nx + i;
        const int t = out.tissue[idx];
        double hu = head.base_hu[t];
        if (t == kTissueSkull) {
          const double x = (i + 0.5) / out.nx * 2.0 - 1.0;
          const double ca = std::cos(head.angle), sa = std::sin(head.angle);
          const double u = ca * (x - head.cx) + sa * (y - head.cy);
          const double v = -sa * (x - head.cx) + ca * (y - head.cy);
          const double p = u / (head.a * model.s), q = v / (head.b * model.s);
          hu = skull_hu((1.0 - std::sqrt(p * p + q * q)) / model.skull_t);
        } else if (t == kTissueBlood) {
          hu = head.lesions[lesion_of[idx]].hu;
          d.subtype[head.lesions[lesion_of[idx]].type] = true;
        }
        hu += o.noise_hu * noise.normal();
        hu = std::clamp(hu, double(kHuLo[t]), double(kHuHi[t]));
        out.hu[idx] = static_cast<int16_t>(std::lround(hu));
      }
    }
    d.no_hemorrhage = true;
    for (bool s : d.subtype) d.no_hemorrhage &= !s;
    d.fracture = fractured[k] != 0;
  }
  return out;
}

SynthSummary write_synthetic_dataset(const std::string& out_dir, const SynthOptions& o) {
  ICH_CHECK(o.patients >= 1 && o.patients <= 999,
            "synth: --patients " << o.patients << " is out of range (1..999)");
  StagingDir staging(out_dir, kDiagnosisCsv);
  const fs::path root(staging.path());
  std::error_code ec;
  fs::create_directory(root / "ct_scans", ec);
  ICH_CHECK(!ec, "cannot create " << (root / "ct_scans").string() << ": " << ec.message());
  fs::create_directory(root / "masks", ec);
  ICH_CHECK(!ec, "cannot create " << (root / "masks").string() << ": " << ec.message());

  SynthSummary summary;
  std::vector<SliceDiagnosis> all_rows;
  const std::string ext = o.gzip ? ".nii.gz" : ".nii";
  // Patients are independent: two workers share them (each patient's numbers depend only on
  // (seed, patient), so the files are the same whatever the order).
  const int workers = std::max(1, std::min<int>(2, o.patients));
  std::vector<std::vector<SliceDiagnosis>> rows_of(o.patients);
  run_workers(workers, [&](int w) {
    for (int p = 1 + w; p <= o.patients; p += workers) {
      const PhantomPatient pp = make_phantom_patient(o, p);
      NiftiWriteOptions nw;
      for (int i = 0; i < 3; ++i) nw.spacing[i] = pp.spacing[i];
      nw.description = o.difficulty == Difficulty::hard ? "ichseg synthetic head CT (HU), hard"
                                                        : "ichseg synthetic head CT (HU)";
      write_nifti((root / "ct_scans" / (patient_name(p) + ext)).string(), pp.nx, pp.ny, pp.nz,
                  kNiftiInt16, pp.hu.data(), nw);
      nw.description = "ichseg synthetic hemorrhage mask";
      write_nifti((root / "masks" / (patient_name(p) + ext)).string(), pp.nx, pp.ny, pp.nz,
                  kNiftiUint8, pp.mask.data(), nw);
      rows_of[p - 1] = pp.diagnosis;
    }
  });
  for (int p = 1; p <= o.patients; ++p) {
    bool patient_ich = false;
    for (const SliceDiagnosis& d : rows_of[p - 1]) {
      all_rows.push_back(d);
      ++summary.slices;
      if (!d.no_hemorrhage) {
        ++summary.slices_with_ich;
        patient_ich = true;
      }
    }
    ++summary.patients;
    summary.patients_with_ich += patient_ich ? 1 : 0;
  }
  write_file_atomic((root / kDiagnosisCsv).string(), format_diagnosis_csv(all_rows));
  if (o.difficulty != Difficulty::easy) {
    std::ostringstream json;
    json << "{\"difficulty\": \"" << difficulty_name(o.difficulty) << "\", \"seed\": " << o.seed
         << ", \"patients\": " << o.patients << ", \"size\": " << o.size
         << ", \"slices\": " << o.slices << ", \"slice_jitter\": " << o.slice_jitter
         << ", \"healthy_fraction\": " << o.healthy_fraction << ", \"noise_hu\": " << o.noise_hu
         << ", \"slices_with_hemorrhage\": " << summary.slices_with_ich
         << ", \"slices_total\": " << summary.slices << "}\n";
    write_file_atomic((root / kSynthMetadataJson).string(), json.str());
  }
  staging.commit();
  return summary;
}

}  // namespace ich::data
