// A stand-in for cuBLAS's cublas_v2.h, for compile checks on a machine without cuBLAS (run.sh --compile-only):
// the types and constants ggml-cuda uses, and functions that accept anything and do nothing. Never linked or run.
#pragma once
#include <library_types.h>
#include <cuda_runtime.h>
#define CUBLAS_VER_MAJOR 13
typedef struct cublasContext * cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_NOT_INITIALIZED = 1, CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7, CUBLAS_STATUS_ARCH_MISMATCH = 8, CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13, CUBLAS_STATUS_INTERNAL_ERROR = 14, CUBLAS_STATUS_NOT_SUPPORTED = 15 } cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_COMPUTE_16F = 64, CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1, CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99 } cublasGemmAlgo_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 } cublasMath_t;
typedef enum { CUBLAS_SIDE_LEFT = 0, CUBLAS_SIDE_RIGHT = 1 } cublasSideMode_t;
typedef enum { CUBLAS_FILL_MODE_LOWER = 0, CUBLAS_FILL_MODE_UPPER = 1 } cublasFillMode_t;
typedef enum { CUBLAS_DIAG_NON_UNIT = 0, CUBLAS_DIAG_UNIT = 1 } cublasDiagType_t;
inline const char * cublasGetStatusString(cublasStatus_t) { return ""; }
#define CUBLAS_STUB(name) template <typename... A> inline cublasStatus_t name(A...) { return CUBLAS_STATUS_SUCCESS; }
CUBLAS_STUB(cublasCreate) CUBLAS_STUB(cublasDestroy) CUBLAS_STUB(cublasGemmEx) CUBLAS_STUB(cublasSetMathMode)
CUBLAS_STUB(cublasSetStream) CUBLAS_STUB(cublasGemmStridedBatchedEx) CUBLAS_STUB(cublasGemmBatchedEx)
CUBLAS_STUB(cublasSgemm) CUBLAS_STUB(cublasStrsmBatched) CUBLAS_STUB(cublasSgemmStridedBatched)
CUBLAS_STUB(cublasSgemmBatched) CUBLAS_STUB(cublasSetWorkspace) CUBLAS_STUB(cublasLoggerConfigure)
