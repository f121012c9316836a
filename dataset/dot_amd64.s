//go:build !purego

#include "textflag.h"

// func dotsF32AVX2(q, rows, out []float32)
//
// out[r] = q · rows[r*len(q):(r+1)*len(q)] for each r < len(out); the
// caller has checked that rows holds len(out) rows. Four independent
// 8-lane FMA chains, then 8 at a time, then one at a time for any length.
TEXT ·dotsF32AVX2(SB), NOSPLIT, $0-72
	MOVQ q_base+0(FP), SI
	MOVQ q_len+8(FP), CX
	MOVQ rows_base+24(FP), DI
	MOVQ out_base+48(FP), DX
	MOVQ out_len+56(FP), BX
	TESTQ BX, BX
	JZ   f32done
	MOVQ CX, R8
	ANDQ $-32, R8
	MOVQ CX, R9
	ANDQ $-8, R9

f32row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ   AX, AX
	CMPQ   AX, R8
	JGE    f32tail8

f32loop32:
	VMOVUPS     (SI)(AX*4), Y4
	VMOVUPS     32(SI)(AX*4), Y5
	VMOVUPS     64(SI)(AX*4), Y6
	VMOVUPS     96(SI)(AX*4), Y7
	VFMADD231PS (DI)(AX*4), Y4, Y0
	VFMADD231PS 32(DI)(AX*4), Y5, Y1
	VFMADD231PS 64(DI)(AX*4), Y6, Y2
	VFMADD231PS 96(DI)(AX*4), Y7, Y3
	ADDQ        $32, AX
	CMPQ        AX, R8
	JLT         f32loop32

f32tail8:
	CMPQ AX, R9
	JGE  f32sum

f32loop8:
	VMOVUPS     (SI)(AX*4), Y4
	VFMADD231PS (DI)(AX*4), Y4, Y0
	ADDQ        $8, AX
	CMPQ        AX, R9
	JLT         f32loop8

f32sum:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	CMPQ         AX, CX
	JGE          f32store

f32loop1:
	VMOVSS      (SI)(AX*4), X4
	VFMADD231SS (DI)(AX*4), X4, X0
	INCQ        AX
	CMPQ        AX, CX
	JLT         f32loop1

f32store:
	VMOVSS X0, (DX)
	ADDQ   $4, DX
	LEAQ   (DI)(CX*4), DI
	DECQ   BX
	JNZ    f32row

f32done:
	VZEROUPPER
	RET

// func dotsU8AVX2(q []int16, codes []uint8, out []int32)
//
// out[r] = q · codes[r*len(q):(r+1)*len(q)] in int32, which the caller
// keeps from overflowing; len(q) is a multiple of 16 and the caller has
// checked that codes holds len(out) rows. Codes are widened to int16 and
// multiplied in pairs (VPMADDWD), which cannot saturate as VPMADDUBSW on
// bytes could.
TEXT ·dotsU8AVX2(SB), NOSPLIT, $0-72
	MOVQ q_base+0(FP), SI
	MOVQ q_len+8(FP), CX
	MOVQ codes_base+24(FP), DI
	MOVQ out_base+48(FP), DX
	MOVQ out_len+56(FP), BX
	TESTQ BX, BX
	JZ   i8done
	MOVQ CX, R8
	ANDQ $-64, R8

i8row:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	XORQ  AX, AX
	CMPQ  AX, R8
	JGE   i8tail16

i8loop64:
	VPMOVZXBW (DI)(AX*1), Y4
	VPMOVZXBW 16(DI)(AX*1), Y5
	VPMOVZXBW 32(DI)(AX*1), Y6
	VPMOVZXBW 48(DI)(AX*1), Y7
	VPMADDWD  (SI)(AX*2), Y4, Y4
	VPMADDWD  32(SI)(AX*2), Y5, Y5
	VPMADDWD  64(SI)(AX*2), Y6, Y6
	VPMADDWD  96(SI)(AX*2), Y7, Y7
	VPADDD    Y4, Y0, Y0
	VPADDD    Y5, Y1, Y1
	VPADDD    Y6, Y2, Y2
	VPADDD    Y7, Y3, Y3
	ADDQ      $64, AX
	CMPQ      AX, R8
	JLT       i8loop64

i8tail16:
	CMPQ AX, CX
	JGE  i8sum

i8loop16:
	VPMOVZXBW (DI)(AX*1), Y4
	VPMADDWD  (SI)(AX*2), Y4, Y4
	VPADDD    Y4, Y0, Y0
	ADDQ      $16, AX
	CMPQ      AX, CX
	JLT       i8loop16

i8sum:
	VPADDD       Y1, Y0, Y0
	VPADDD       Y3, Y2, Y2
	VPADDD       Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xb1, X0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, (DX)
	ADDQ         $4, DX
	ADDQ         CX, DI
	DECQ         BX
	JNZ          i8row

i8done:
	VZEROUPPER
	RET

// func dotsU8VNNI(q []int8, codes []uint8, out []int32)
//
// dotsU8AVX2 for a query of bytes, with AVX-512 VNNI: VPDPBUSD multiplies
// 64 unsigned codes by 64 signed query bytes and adds them, four at a
// time, into 16 int32 sums; no saturation. len(q) is a multiple of 64.
TEXT ·dotsU8VNNI(SB), NOSPLIT, $0-72
	MOVQ q_base+0(FP), SI
	MOVQ q_len+8(FP), CX
	MOVQ codes_base+24(FP), DI
	MOVQ out_base+48(FP), DX
	MOVQ out_len+56(FP), BX
	TESTQ BX, BX
	JZ   vnnidone
	MOVQ CX, R8
	ANDQ $-256, R8

vnnirow:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	XORQ   AX, AX
	CMPQ   AX, R8
	JGE    vnnitail64

vnniloop256:
	VMOVDQU32 (DI)(AX*1), Z4
	VMOVDQU32 64(DI)(AX*1), Z5
	VMOVDQU32 128(DI)(AX*1), Z6
	VMOVDQU32 192(DI)(AX*1), Z7
	VPDPBUSD  (SI)(AX*1), Z4, Z0
	VPDPBUSD  64(SI)(AX*1), Z5, Z1
	VPDPBUSD  128(SI)(AX*1), Z6, Z2
	VPDPBUSD  192(SI)(AX*1), Z7, Z3
	ADDQ      $256, AX
	CMPQ      AX, R8
	JLT       vnniloop256

vnnitail64:
	CMPQ AX, CX
	JGE  vnnisum

vnniloop64:
	VMOVDQU32 (DI)(AX*1), Z4
	VPDPBUSD  (SI)(AX*1), Z4, Z0
	ADDQ      $64, AX
	CMPQ      AX, CX
	JLT       vnniloop64

vnnisum:
	VPADDD        Z1, Z0, Z0
	VPADDD        Z3, Z2, Z2
	VPADDD        Z2, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPADDD        Y1, Y0, Y0
	VEXTRACTI128  $1, Y0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0x4e, X0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0xb1, X0, X1
	VPADDD        X1, X0, X0
	VMOVD         X0, (DX)
	ADDQ          $4, DX
	ADDQ          CX, DI
	DECQ          BX
	JNZ           vnnirow

vnnidone:
	VZEROUPPER
	RET
