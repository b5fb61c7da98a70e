//! Q4_1 matrix products for candle, computed the way llama.cpp's CPU backend computes them.
//!
//! candle 0.11 has no SIMD kernel for Q4_1 on x86: its scalar dot product took 57% of the
//! generation time on SmolLM2 Q4_1 (`perf record` on `modelforge bench --backend candle`).
//! This kernel keeps the weights as the file stores them and follows ggml step by step:
//! activations quantized to Q8_1 with ggml's rounding (`127 / max`, ties to even), an exact
//! integer dot product per block in eight lanes of four bytes, one fused multiply-add per lane
//! and block, and ggml's order for the final sum. Given the same activations it returns the
//! bits llama.cpp returns, so the two backends part only where other operations round
//! differently.
//!
//! The AVX2 version is compiled when the build enables AVX2 and FMA (`-C target-cpu=native`
//! on such a CPU); other builds use a scalar version with the same arithmetic.

use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use half::f16;

/// Weights per block, for Q4_1 and Q8_1 alike.
const QK: usize = 32;

/// Bytes of one Q4_1 block in a GGUF file: `d` and `m` as f16, then 16 bytes of nibbles.
const Q4_1_BYTES: usize = 20;

/// 32 weights `w = d·q + m`, `q` in `0..16`: low nibbles are weights 0..16, high nibbles
/// 16..32.
#[derive(Clone, Copy, Debug)]
struct BlockQ4_1 {
    d: f16,
    m: f16,
    qs: [u8; 16],
}

/// 32 activations `x ≈ d·q`, with `s = d·Σq`. `d` and `s` hold values rounded to f16, as
/// ggml stores them.
#[derive(Clone, Copy, Debug, Default)]
struct BlockQ8_1 {
    d: f32,
    s: f32,
    qs: [i8; QK],
}

/// A Q4_1 weight matrix of `rows` outputs by `cols` inputs, as stored in the file.
#[derive(Debug)]
pub(crate) struct Q4_1Matrix {
    blocks: Vec<BlockQ4_1>,
    rows: usize,
    cols: usize,
}

impl Q4_1Matrix {
    /// Reads `rows × cols` weights from GGUF Q4_1 bytes.
    pub(crate) fn from_bytes(bytes: &[u8], rows: usize, cols: usize) -> candle_core::Result<Self> {
        if cols % QK != 0 || bytes.len() != rows * cols / QK * Q4_1_BYTES {
            candle_core::bail!(
                "a Q4_1 tensor of {rows}x{cols} needs {} bytes and columns in blocks of {QK}; it has {}",
                rows * cols / QK * Q4_1_BYTES,
                bytes.len()
            );
        }
        Ok(Self { blocks: bytes.chunks_exact(Q4_1_BYTES).map(parse_block).collect(), rows, cols })
    }

    /// Reads matrices of `cols` columns stored one after another as GGUF Q4_1 bytes, each
    /// given as (file offset, rows), stacked into one. The bytes go straight from the file
    /// into this layout through a small buffer: no whole-tensor copies whose freed memory the
    /// allocator would keep.
    pub(crate) fn read<R: Read + Seek>(
        reader: &mut R,
        parts: &[(u64, usize)],
        cols: usize,
    ) -> candle_core::Result<Self> {
        if cols % QK != 0 {
            candle_core::bail!("a Q4_1 tensor of {cols} columns is not made of blocks of {QK}");
        }
        let rows: usize = parts.iter().map(|&(_, rows)| rows).sum();
        let mut blocks = Vec::with_capacity(rows * cols / QK);
        let mut buffer = vec![0u8; 4096 * Q4_1_BYTES];
        for &(offset, part_rows) in parts {
            reader.seek(SeekFrom::Start(offset))?;
            let mut left = part_rows * cols / QK * Q4_1_BYTES;
            while left > 0 {
                let chunk = &mut buffer[..left.min(4096 * Q4_1_BYTES)];
                reader.read_exact(chunk)?;
                blocks.extend(chunk.chunks_exact(Q4_1_BYTES).map(parse_block));
                left -= chunk.len();
            }
        }
        Ok(Self { blocks, rows, cols })
    }

    fn row(&self, r: usize) -> &[BlockQ4_1] {
        let per_row = self.cols / QK;
        &self.blocks[r * per_row..(r + 1) * per_row]
    }

    /// `x · selfᵀ` for `x` of `m × cols` (row-major), returning `m × rows`.
    fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        if m == 0 || self.rows == 0 {
            return Vec::new();
        }
        let per_row = self.cols / QK;
        let mut q8 = vec![BlockQ8_1::default(); m * per_row];
        for (xs, ys) in x.chunks_exact(self.cols).zip(q8.chunks_exact_mut(per_row)) {
            quantize_q8_1(xs, ys);
        }
        // Output rows are split into pieces that candle's thread pool shares out; each piece
        // fills its own buffer (column-major within the piece), gathered at the end.
        let pool = candle_core::utils::barrier_pool();
        let pieces = (pool.n_workers() + 1) * 4;
        let piece_len = self.rows.div_ceil(pieces);
        let done: Mutex<Vec<(usize, Vec<f32>)>> = Mutex::new(Vec::with_capacity(pieces));
        pool.execute_chunked(self.rows.div_ceil(piece_len), |range| {
            for piece in range {
                let start = piece * piece_len;
                let end = self.rows.min(start + piece_len);
                let mut out = Vec::with_capacity((end - start) * m);
                for r in start..end {
                    let w = self.row(r);
                    out.extend(q8.chunks_exact(per_row).map(|a| dot(w, a)));
                }
                done.lock().expect("no worker panicked").push((start, out));
            }
        });
        let mut y = vec![0f32; m * self.rows];
        for (start, out) in done.into_inner().expect("no worker panicked") {
            for (i, column) in out.chunks_exact(m).enumerate() {
                for (row, &v) in column.iter().enumerate() {
                    y[row * self.rows + start + i] = v;
                }
            }
        }
        y
    }
}

fn parse_block(b: &[u8]) -> BlockQ4_1 {
    BlockQ4_1 {
        d: f16::from_le_bytes([b[0], b[1]]),
        m: f16::from_le_bytes([b[2], b[3]]),
        qs: b[4..Q4_1_BYTES].try_into().expect("16 bytes"),
    }
}

/// `x · Wᵀ` for a Q4_1 `W`, as a candle op on the activations `x` (`(..., cols)`, f32).
#[derive(Clone, Debug)]
pub(crate) struct Q4_1MatMul(pub(crate) Arc<Q4_1Matrix>);

impl Q4_1MatMul {
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.apply_op1_no_bwd(self)
    }
}

impl CustomOp1 for Q4_1MatMul {
    fn name(&self) -> &'static str {
        "q4_1-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let w = &self.0;
        let dims = layout.shape().dims();
        if dims.last() != Some(&w.cols) {
            candle_core::bail!("q4_1-matmul: input of shape {dims:?} for a weight of {}x{}", w.rows, w.cols);
        }
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("q4_1-matmul: the input must be contiguous");
        };
        let x = &storage.as_slice::<f32>()?[start..end];
        let m = x.len() / w.cols;
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("at least one dimension") = w.rows;
        Ok((CpuStorage::F32(w.matmul(x, m)), Shape::from(out_dims)))
    }
}

/// ggml's `quantize_row_q8_1` (x86): scale `127 / max|x|`, round half to even, and the block
/// sum rounded to f16 once.
fn quantize_q8_1(xs: &[f32], ys: &mut [BlockQ8_1]) {
    for (x, y) in xs.chunks_exact(QK).zip(ys) {
        let max = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = max / 127.0;
        let id = if max != 0.0 { 127.0 / max } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in y.qs.iter_mut().zip(x) {
            let r = (v * id).round_ties_even() as i32;
            *q = r as i8;
            sum += r;
        }
        y.d = f16::from_f32(d).to_f32();
        y.s = f16::from_f32(d * sum as f32).to_f32();
    }
}

/// ggml's `hsum_float_8`: the eight lanes summed in its order.
fn hsum8(a: [f32; 8]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

/// ggml's `ggml_vec_dot_q4_1_q8_1` (x86 AVX2).
#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
#[allow(unsafe_code)]
fn dot(xs: &[BlockQ4_1], ys: &[BlockQ8_1]) -> f32 {
    // SAFETY: this version is only compiled when the build itself targets AVX2 and FMA, so
    // every CPU that runs this binary has them.
    unsafe { dot_avx2(xs, ys) }
}

#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(xs: &[BlockQ4_1], ys: &[BlockQ8_1]) -> f32 {
    use std::arch::x86_64::*;
    let low = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    let mut summs = 0f32;
    for (x, y) in xs.iter().zip(ys) {
        summs += x.m.to_f32() * y.s;
        let d0d1 = _mm256_set1_ps(x.d.to_f32() * y.d);
        let nibbles: __m128i = bytemuck::cast(x.qs);
        let qx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(nibbles), nibbles), low);
        let qy: __m256i = bytemuck::cast(y.qs);
        let xy = _mm256_cvtepi32_ps(_mm256_madd_epi16(ones, _mm256_maddubs_epi16(qx, qy)));
        acc = _mm256_fmadd_ps(d0d1, xy, acc);
    }
    hsum8(bytemuck::cast(acc)) + summs
}

/// The same arithmetic as the AVX2 version, one lane at a time.
#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma")))]
fn dot(xs: &[BlockQ4_1], ys: &[BlockQ8_1]) -> f32 {
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for (x, y) in xs.iter().zip(ys) {
        summs += x.m.to_f32() * y.s;
        let d0d1 = x.d.to_f32() * y.d;
        for (lane, a) in acc.iter_mut().enumerate() {
            let sum: i32 = (4 * lane..4 * lane + 4).map(|j| nibble(x, j) * i32::from(y.qs[j])).sum();
            *a = d0d1.mul_add(sum as f32, *a);
        }
    }
    hsum8(acc) + summs
}

/// Weight `j` (0..32) of a block, before scaling.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"), allow(dead_code))]
fn nibble(x: &BlockQ4_1, j: usize) -> i32 {
    i32::from(if j < 16 { x.qs[j] & 0x0f } else { x.qs[j - 16] >> 4 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small random matrix and its Q4_1 bytes, quantized like ggml's `quantize_row_q4_1`.
    fn random_q4_1(rows: usize, cols: usize, seed: u32) -> (Vec<u8>, Vec<f32>) {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let (mut bytes, mut dequantized) = (Vec::new(), Vec::new());
        for _ in 0..rows * cols / QK {
            let w: Vec<f32> = (0..QK).map(|_| next()).collect();
            let min = w.iter().copied().fold(f32::INFINITY, f32::min);
            let max = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let d = f16::from_f32((max - min) / 15.0);
            let m = f16::from_f32(min);
            let q: Vec<u8> = w.iter().map(|v| (((v - min) / d.to_f32()).round() as u8).min(15)).collect();
            bytes.extend(d.to_le_bytes());
            bytes.extend(m.to_le_bytes());
            bytes.extend((0..16).map(|j| q[j] | (q[j + 16] << 4)));
            dequantized.extend(q.iter().map(|&q| d.to_f32() * f32::from(q) + m.to_f32()));
        }
        (bytes, dequantized)
    }

    #[test]
    fn matmul_matches_the_dequantized_product_and_the_lane_free_sum() {
        let (rows, cols, m) = (37, 96, 3);
        let (bytes, w) = random_q4_1(rows, cols, 7);
        let matrix = Q4_1Matrix::from_bytes(&bytes, rows, cols).unwrap();
        let x: Vec<f32> = (0..m * cols).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let y = matrix.matmul(&x, m);
        assert_eq!(y.len(), m * rows);
        let mut q8 = vec![BlockQ8_1::default(); m * cols / QK];
        for (xs, ys) in x.chunks_exact(cols).zip(q8.chunks_exact_mut(cols / QK)) {
            quantize_q8_1(xs, ys);
        }
        for i in 0..m {
            for r in 0..rows {
                // Against full precision: only the 8-bit activations' rounding differs.
                let exact: f32 = (0..cols).map(|c| x[i * cols + c] * w[r * cols + c]).sum();
                let got = y[i * rows + r];
                assert!((got - exact).abs() < 0.05 * (1.0 + exact.abs()), "[{i},{r}]: {got} vs {exact}");
                // Against the same quantized inputs summed block by block without lanes: equal
                // up to float reassociation.
                let blocks = &q8[i * cols / QK..(i + 1) * cols / QK];
                let plain: f32 = matrix
                    .row(r)
                    .iter()
                    .zip(blocks)
                    .map(|(x, a)| {
                        let sum: i32 = (0..QK).map(|j| nibble(x, j) * i32::from(a.qs[j])).sum();
                        x.d.to_f32() * a.d * sum as f32 + x.m.to_f32() * a.s
                    })
                    .sum();
                assert!((got - plain).abs() <= 1e-4 * (1.0 + plain.abs()), "[{i},{r}]: {got} vs {plain}");
            }
        }
    }

    #[test]
    fn q8_1_rounds_like_ggml() {
        let mut x = [0f32; QK];
        x[0] = 127.0;
        x[1] = 2.5; // a tie: to even, 2
        x[2] = -3.5; // a tie: to even, -4
        x[3] = 0.49;
        let mut y = [BlockQ8_1::default()];
        quantize_q8_1(&x, &mut y);
        assert_eq!(&y[0].qs[..4], &[127, 2, -4, 0]);
        assert_eq!(y[0].d, 1.0);
        assert_eq!(y[0].s, 125.0);
        let mut zero = [BlockQ8_1::default()];
        quantize_q8_1(&[0.0; QK], &mut zero);
        assert_eq!((zero[0].d, zero[0].s, zero[0].qs), (0.0, 0.0, [0; QK]));
    }

    #[test]
    fn reading_stacked_parts_from_a_file_equals_the_bytes_in_memory() {
        let (a, _) = random_q4_1(3, 64, 2);
        let (b, _) = random_q4_1(5, 64, 3);
        let mut file = vec![0xaa; 7];
        file.extend(&a);
        file.extend([0xbb; 9]);
        file.extend(&b);
        let parts = [(7, 3), (7 + a.len() as u64 + 9, 5)];
        let read = Q4_1Matrix::read(&mut std::io::Cursor::new(&file), &parts, 64).unwrap();
        let whole = Q4_1Matrix::from_bytes(&[a, b].concat(), 8, 64).unwrap();
        let x: Vec<f32> = (0..64).map(|i| i as f32 / 7.0 - 4.0).collect();
        assert_eq!((read.rows, read.cols), (8, 64));
        assert_eq!(read.matmul(&x, 1), whole.matmul(&x, 1));
        let short = Q4_1Matrix::read(&mut std::io::Cursor::new(&file[..20]), &parts, 64);
        assert!(short.is_err(), "a file that ends early is an error");
    }

    #[test]
    fn empty_inputs_give_empty_outputs() {
        let (bytes, _) = random_q4_1(4, 32, 1);
        assert!(Q4_1Matrix::from_bytes(&bytes, 4, 32).unwrap().matmul(&[], 0).is_empty());
        assert!(Q4_1Matrix::from_bytes(&[], 0, 32).unwrap().matmul(&[0.0; 32], 1).is_empty());
    }

    #[test]
    fn a_wrong_size_is_an_error() {
        assert!(Q4_1Matrix::from_bytes(&[0; 19], 1, 32).is_err());
        assert!(Q4_1Matrix::from_bytes(&[0; 20], 1, 30).is_err());
    }
}
