package datasettest

import "fmt"

// SearchTestBody is FastGPT's documented searchTest request (dataset.mdx,
// 搜索测试) as the docs write it, with query extension on, for the dataset,
// search mode and extension model given. The dataset's handler tests and
// the server's send the same text, so both check the request users copy.
func SearchTestBody(datasetID, mode, extensionModel string) string {
	return fmt.Sprintf(`{
    "datasetId": %q,
    "text": "导演是谁",
    "limit": 5000,
    "similarity": 0,
    "searchMode": %q,
    "usingReRank": false,

    "datasetSearchUsingExtensionQuery": true,
    "datasetSearchExtensionModel": %q,
    "datasetSearchExtensionBg": ""
}`, datasetID, mode, extensionModel)
}
