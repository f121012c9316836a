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

// CreateLinkBody is FastGPT's documented collection/create/link request
// (dataset.mdx, 创建一个链接集合) as the docs write it, with the link and
// the dataset's id filled in.
func CreateLinkBody(link, datasetID string) string {
	return fmt.Sprintf(`{
    "link":%q,
    "datasetId":%q,
    "parentId": null,

    "trainingType": "chunk",
    "chunkSettingMode": "auto",
    "qaPrompt":"",

    "metadata":{
        "webPageSelector":".docs-content"
    }
}`, link, datasetID)
}
