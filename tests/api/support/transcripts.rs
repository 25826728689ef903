//! Recorded model streams, byte for byte in the wire formats of OpenAI's Responses API
//! (`event:` + `data:` lines) and Chat Completions API (`data:` lines, `data: [DONE]`).

/// Responses API: one message, text in three deltas (one with a multi-byte character), usage.
pub const RESPONSES_PLAIN: &str = concat!(
    "event: response.created\n",
    r#"data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_68a1c0f2e4a48190a0b6a4c2f1d3e5b70c9d8e7f6a5b4c3d","object":"response","created_at":1755430130,"status":"in_progress","background":false,"error":null,"incomplete_details":null,"instructions":"…","max_output_tokens":null,"model":"gpt-4.1-mini-2025-04-14","output":[],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":false,"temperature":1.0,"text":{"format":{"type":"text"},"verbosity":"medium"},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":null,"user":null,"metadata":{}}}"#,
    "\n\n",
    "event: response.in_progress\n",
    r#"data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_68a1c0f2e4a48190a0b6a4c2f1d3e5b70c9d8e7f6a5b4c3d","object":"response","created_at":1755430130,"status":"in_progress","model":"gpt-4.1-mini-2025-04-14","output":[],"usage":null}}"#,
    "\n\n",
    "event: response.output_item.added\n",
    r#"data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_68a1c0f3a1b08190b1c2d3e4f5a6b7c80c9d8e7f6a5b4c3d","type":"message","status":"in_progress","content":[],"role":"assistant"}}"#,
    "\n\n",
    "event: response.content_part.added\n",
    r#"data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_68a1c0f3a1b08190b1c2d3e4f5a6b7c80c9d8e7f6a5b4c3d","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}}"#,
    "\n\n",
    "event: response.output_text.delta\n",
    r#"data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_68a1c0f3a1b08190b1c2d3e4f5a6b7c80c9d8e7f6a5b4c3d","output_index":0,"content_index":0,"delta":"Hi Ada! ","logprobs":[]}"#,
    "\n\n",
    "event: response.output_text.delta\n",
    r#"data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_68a1c0f3a1b08190b1c2d3e4f5a6b7c80c9d8e7f6a5b4c3d","output_index":0,"content_index":0,"delta":"**Ownership** means one owner — ","logprobs":[]}"#,
    "\n\n",
    "event: response.output_text.delta\n",
    r#"data: {"type":"response.output_text.delta","sequence_number":6,"item_id":"msg_68a1c0f3a1b08190b1c2d3e4f5a6b7c80c9d8e7f6a5b4c3d","output_index":0,"content_index":0,"delta":"what happens on a move? 🤔","logprobs":[]}"#,
    "\n\n",
    "event: response.output_text.done\n",
    r#"data: {"type":"response.output_text.done","sequence_number":7,"item_id":"msg_68a1c0f3a1b08190b1c2d3e4f5a6b7c80c9d8e7f6a5b4c3d","output_index":0,"content_index":0,"text":"Hi Ada! **Ownership** means one owner — what happens on a move? 🤔","logprobs":[]}"#,
    "\n\n",
    "event: response.content_part.done\n",
    r#"data: {"type":"response.content_part.done","sequence_number":8,"item_id":"msg_68a1c0f3a1b08190b1c2d3e4f5a6b7c80c9d8e7f6a5b4c3d","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":"Hi Ada! **Ownership** means one owner — what happens on a move? 🤔"}}"#,
    "\n\n",
    "event: response.output_item.done\n",
    r#"data: {"type":"response.output_item.done","sequence_number":9,"output_index":0,"item":{"id":"msg_68a1c0f3a1b08190b1c2d3e4f5a6b7c80c9d8e7f6a5b4c3d","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"Hi Ada! **Ownership** means one owner — what happens on a move? 🤔"}],"role":"assistant"}}"#,
    "\n\n",
    "event: response.completed\n",
    r#"data: {"type":"response.completed","sequence_number":10,"response":{"id":"resp_68a1c0f2e4a48190a0b6a4c2f1d3e5b70c9d8e7f6a5b4c3d","object":"response","created_at":1755430130,"status":"completed","error":null,"incomplete_details":null,"model":"gpt-4.1-mini-2025-04-14","output":[{"id":"msg_68a1c0f3a1b08190b1c2d3e4f5a6b7c80c9d8e7f6a5b4c3d","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"Hi Ada! **Ownership** means one owner — what happens on a move? 🤔"}],"role":"assistant"}],"store":false,"usage":{"input_tokens":412,"input_tokens_details":{"cached_tokens":0},"output_tokens":19,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":431},"user":null,"metadata":{}}}"#,
    "\n\n",
);

/// Responses API: two content parts in one message, then completion without usage details.
pub const RESPONSES_TWO_PARTS: &str = concat!(
    "event: response.output_item.added\n",
    r#"data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}}"#,
    "\n\n",
    "event: response.content_part.added\n",
    r#"data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"text":""}}"#,
    "\n\n",
    "event: response.output_text.delta\n",
    r#"data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"First part."}"#,
    "\n\n",
    "event: response.content_part.done\n",
    r#"data: {"type":"response.content_part.done","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"text":"First part."}}"#,
    "\n\n",
    "event: response.content_part.added\n",
    r#"data: {"type":"response.content_part.added","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":1,"part":{"type":"output_text","annotations":[],"text":""}}"#,
    "\n\n",
    "event: response.output_text.delta\n",
    r#"data: {"type":"response.output_text.delta","sequence_number":7,"item_id":"msg_1","output_index":0,"content_index":1,"delta":"Second "}"#,
    "\n\n",
    "event: response.output_text.delta\n",
    r#"data: {"type":"response.output_text.delta","sequence_number":8,"item_id":"msg_1","output_index":0,"content_index":1,"delta":"part."}"#,
    "\n\n",
    "event: response.completed\n",
    r#"data: {"type":"response.completed","sequence_number":9,"response":{"id":"resp_2","object":"response","status":"completed","output":[],"usage":{"input_tokens":10,"output_tokens":5,"total_tokens":15}}}"#,
    "\n\n",
);

/// Responses API: two deltas, then an `error` event.
pub const RESPONSES_ERROR_MID_STREAM: &str = concat!(
    "event: response.content_part.added\n",
    r#"data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"text":""}}"#,
    "\n\n",
    "event: response.output_text.delta\n",
    r#"data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Each value "}"#,
    "\n\n",
    "event: response.output_text.delta\n",
    r#"data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"has one"}"#,
    "\n\n",
    "event: error\n",
    r#"data: {"type":"error","sequence_number":6,"code":"server_error","message":"The server had an error while processing your request. Sorry about that!","param":null}"#,
    "\n\n",
);

/// Chat Completions: role chunk, three content chunks, finish, usage chunk, `[DONE]`.
pub const CHAT_PLAIN: &str = concat!(
    r#"data: {"id":"chatcmpl-C5cWZ3qQm0d2mZbVQ8Lr1x7yT4kNs","object":"chat.completion.chunk","created":1755430200,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_6f2eabb9a5","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-C5cWZ3qQm0d2mZbVQ8Lr1x7yT4kNs","object":"chat.completion.chunk","created":1755430200,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_6f2eabb9a5","choices":[{"index":0,"delta":{"content":"A move "},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-C5cWZ3qQm0d2mZbVQ8Lr1x7yT4kNs","object":"chat.completion.chunk","created":1755430200,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_6f2eabb9a5","choices":[{"index":0,"delta":{"content":"transfers ownership — "},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-C5cWZ3qQm0d2mZbVQ8Lr1x7yT4kNs","object":"chat.completion.chunk","created":1755430200,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_6f2eabb9a5","choices":[{"index":0,"delta":{"content":"déjà vu 🦀."},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-C5cWZ3qQm0d2mZbVQ8Lr1x7yT4kNs","object":"chat.completion.chunk","created":1755430200,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_6f2eabb9a5","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-C5cWZ3qQm0d2mZbVQ8Lr1x7yT4kNs","object":"chat.completion.chunk","created":1755430200,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_6f2eabb9a5","choices":[],"usage":{"prompt_tokens":388,"completion_tokens":12,"total_tokens":400,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// Chat Completions as a compatible server (DeepSeek-style) sends it: `\r\n` line ends and
/// `: keep-alive` comments between chunks.
pub fn chat_crlf_with_comments() -> String {
    let mut out = String::from(": keep-alive\r\n\r\n");
    for block in CHAT_PLAIN.split("\n\n").filter(|b| !b.is_empty()) {
        out.push_str(block);
        out.push_str("\r\n\r\n: keep-alive\r\n\r\n");
    }
    out
}

/// Chat Completions: one content chunk, then an error object (vLLM/OpenRouter style).
pub const CHAT_ERROR_MID_STREAM: &str = concat!(
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1755430200,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Borrowing "},"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"error":{"message":"upstream model overloaded","type":"server_error","code":502}}"#,
    "\n\n",
);

/// The first two chunks of a Chat Completions stream (used before a stall).
pub const CHAT_TWO_CHUNKS: &str = concat!(
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1755430200,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1755430200,"model":"m","choices":[{"index":0,"delta":{"content":"Partial"},"finish_reason":null}]}"#,
    "\n\n",
);

/// OpenAI's 429 body.
pub const RATE_LIMITED: &str = r#"{"error":{"message":"Rate limit reached for gpt-4.1-mini in organization org-abc on tokens per min (TPM): Limit 200000, Used 199876, Requested 412. Please try again in 87ms.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;

/// OpenAI's 401 body.
pub const BAD_KEY: &str = r#"{"error":{"message":"Incorrect API key provided: sk-test. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
