package dataset

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// memBenchDocs is a corpus shaped like bench_test.go's: 100,000 chunks of
// 48 words drawn by a Zipf law from 4,000 Latin and 1,500 two-character
// Chinese words, so a few words are in most chunks and most in few.
func memBenchDocs(n int) []TextDoc {
	r := rand.New(rand.NewPCG(7, 8))
	han := []rune("账户密码登录服务器超时部署集群副本备份恢复配额账单租户模型向量索引搜索答案上传导出导入计划重试延迟区域存储归档镜像分片退款发票订单客户产品价格库存物流仓库运输支付信用风险合同审批流程权限角色用户组织部门项目任务报告数据分析指标监控告警日志事件网络安全加密证书")
	vocab := make([]string, 0, 5500)
	for i := range 4000 {
		vocab = append(vocab, fmt.Sprintf("w%dx", i))
	}
	for len(vocab) < 5500 {
		vocab = append(vocab, string([]rune{han[r.IntN(len(han))], han[r.IntN(len(han))]}))
	}
	r.Shuffle(len(vocab), func(i, j int) { vocab[i], vocab[j] = vocab[j], vocab[i] })
	z := rand.NewZipf(r, 1.1, 2, uint64(len(vocab)-1))
	docs := make([]TextDoc, n)
	for i := range docs {
		var sb strings.Builder
		for w := range 48 {
			if w > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(vocab[z.Uint64()])
		}
		docs[i] = TextDoc{ID: fmt.Sprintf("%024x", i), DatasetID: "ds", Text: sb.String()}
	}
	return docs
}

// memBenchQueries are 200 queries of 12 words of a chunk each, as
// bench_test.go's are.
func memBenchQueries(docs []TextDoc) []string {
	qs := make([]string, 200)
	for j := range qs {
		qs[j] = strings.Join(strings.Fields(docs[(j*7919+13)%len(docs)].Text)[10:22], " ")
	}
	return qs
}

// BenchmarkMemTextSearch100k is one search of the built-in index over
// 100,000 chunks, for the 100 hits of a full-text search and the 200 of a
// mixed one's text half; an op is one query.
func BenchmarkMemTextSearch100k(b *testing.B) {
	ctx := context.Background()
	docs := memBenchDocs(100_000)
	m := newMemText()
	for at := 0; at < len(docs); at += 1024 {
		if err := m.Index(ctx, docs[at:min(at+1024, len(docs))]); err != nil {
			b.Fatal(err)
		}
	}
	qs := memBenchQueries(docs)
	for _, n := range []int{100, 200} {
		b.Run(fmt.Sprintf("top%d", n), func(b *testing.B) {
			j := 0
			for b.Loop() {
				if hits, err := m.Search(ctx, []string{"ds"}, qs[j%len(qs)], n); err != nil || len(hits) != n {
					b.Fatalf("%d hits, %v", len(hits), err)
				}
				j++
			}
		})
	}
}

// BenchmarkMemTextIndex100k indexes 100,000 chunks into an empty built-in
// index, in batches of 1,024, as a Service's start-up does.
func BenchmarkMemTextIndex100k(b *testing.B) {
	ctx := context.Background()
	docs := memBenchDocs(100_000)
	for b.Loop() {
		m := newMemText()
		for at := 0; at < len(docs); at += 1024 {
			if err := m.Index(ctx, docs[at:min(at+1024, len(docs))]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
