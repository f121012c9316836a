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

// func dotsI8AVX2(q []int16, codes []int8, out []int32)
//
// out[r] = q · codes[r*len(q):(r+1)*len(q)] in exact integers; len(q) is a
// multiple of 16 and the caller has checked that codes holds len(out) rows.
// Codes are widened to int16 and multiplied in pairs (VPMADDWD), which
// cannot saturate as VPMADDUBSW on bytes could.
TEXT ·dotsI8AVX2(SB), NOSPLIT, $0-72
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
	VPMOVSXBW (DI)(AX*1), Y4
	VPMOVSXBW 16(DI)(AX*1), Y5
	VPMOVSXBW 32(DI)(AX*1), Y6
	VPMOVSXBW 48(DI)(AX*1), Y7
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
	VPMOVSXBW (DI)(AX*1), Y4
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
