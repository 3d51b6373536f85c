--[[ Talks to the Retouch Bridge HTTP API (docs/API.md, protocol 1) through LrHttp.

local client = BridgeClient.fromPrefs()          -- URL, token and timeout from Plug-in Manager
local bytes, info = client:runOperation('upscale', { scale = 2 }, { path = '/tmp/photo.tif' },
                                        'photo.tif', { format = 'tiff' })   -- or the bytes as a string
  success: bytes = the encoded result, info = { status, headers (lower-case map) }
  failure: bytes = nil, info = a problem: { kind, status, code, message, details, hint }
           and BridgeClient.describe(problem) gives a sentence that says what to do.

local bytes, info = client:runRecipe(recipeText, { path = ... }, 'photo.tif', { format = 'tiff' },
                                     { isCanceled = function() return scope:isCanceled() end })
  POST /v1/recipes/run (a job), waits for it, then fetches its result in the format asked.
  A recipe the bridge refuses (unknown op, bad parameter, missing model) comes back at once
  as a problem whose details name the step (details.step, details.op).

Every failure comes back as a value; nothing here raises for a network or server fault.

Before the token or any pixels go out, the server must prove it holds our token
(Identity.lua): once per client (one export, one Test connection), again before every
upload of pixels and after a network failure. A server that cannot is sent nothing more.
]]

local LrHttp = import 'LrHttp'
local LrPrefs = import 'LrPrefs'
local LrTasks = import 'LrTasks'

local Identity = require 'Identity'
local JSON = require 'JSON'
local Multipart = require 'Multipart'

local BridgeClient = {}
BridgeClient.__index = BridgeClient

BridgeClient.DEFAULT_URL = 'http://127.0.0.1:7847'
BridgeClient.DEFAULT_TIMEOUT = 600   -- seconds: a x4 model upscale of a 50 MP file takes minutes on CPU
BridgeClient.PROTOCOL = 1

local CONTENT_TYPES = { tif = 'image/tiff', tiff = 'image/tiff', jpg = 'image/jpeg', jpeg = 'image/jpeg',
	png = 'image/png', webp = 'image/webp' }

function BridgeClient.normalizeUrl(url)
	url = tostring(url or ''):gsub('^%s+', ''):gsub('%s+$', '')
	if url == '' then return BridgeClient.DEFAULT_URL end
	if not url:match('^%a[%w+.-]*://') then url = 'http://' .. url end
	return (url:gsub('/+$', ''))
end

function BridgeClient.new(args)
	args = args or {}
	local token = tostring(args.token or ''):gsub('^%s+', ''):gsub('%s+$', '')
	return setmetatable({
		url = BridgeClient.normalizeUrl(args.url),
		token = token,
		timeout = tonumber(args.timeout) or BridgeClient.DEFAULT_TIMEOUT,
		maxRetries = args.maxRetries or 3,
		sleep = args.sleep or LrTasks.sleep,
		verified = false,   -- the server on the port has proved it holds our token
	}, BridgeClient)
end

function BridgeClient.fromPrefs()
	local prefs = LrPrefs.prefsForPlugin()
	return BridgeClient.new { url = prefs.bridgeUrl, token = prefs.bridgeToken, timeout = prefs.bridgeTimeout }
end

local function urlEncode(s)
	return (tostring(s):gsub('[^%w%-%._~]', function(c) return string.format('%%%02X', c:byte()) end))
end

local function headerList(map)
	local list = {}
	local keys = {}
	for k in pairs(map) do keys[#keys + 1] = k end
	table.sort(keys)
	for _, k in ipairs(keys) do list[#list + 1] = { field = k, value = map[k] } end
	return list
end

-- LrHttp answers headers as { {field, value}, ..., status = n }; we want a map.
local function responseHeaders(hdrs)
	local map = {}
	for _, h in ipairs(hdrs or {}) do
		if type(h) == 'table' and h.field then map[tostring(h.field):lower()] = h.value end
	end
	return map
end

function BridgeClient:authHeaders()
	local headers = { Accept = '*/*' }
	if self.token ~= '' then headers.Authorization = 'Bearer ' .. self.token end
	return headers
end

function BridgeClient.contentTypeFor(fileName)
	local ext = tostring(fileName):match('%.([^.]+)$')
	return CONTENT_TYPES[ext and ext:lower() or ''] or 'application/octet-stream'
end

-- The URL, headers and body of one synchronous operation call (kept separate so specs
-- can check it). `image` is the encoded file as a string, or { path = file on disk },
-- which is streamed from disk. body() gives a fresh byte getter and its total size.
local function outputQuery(output)
	output = output or {}
	local query = {}
	if output.format then query[#query + 1] = 'format=' .. urlEncode(output.format) end
	if output.quality then query[#query + 1] = 'quality=' .. urlEncode(output.quality) end
	if #query == 0 then return '' end
	return '?' .. table.concat(query, '&')
end

local function imagePart(image, fileName)
	local part = { name = 'image', fileName = fileName or 'image',
		contentType = BridgeClient.contentTypeFor(fileName or '') }
	if type(image) == 'table' then part.filePath = image.path else part.value = image end
	return part
end

function BridgeClient:multipartRequest(url, parts)
	local boundary = Multipart.newBoundary()
	local headers = self:authHeaders()
	headers['Content-Type'] = 'multipart/form-data; boundary=' .. boundary
	return {
		url = url,
		headers = headers,
		body = function()
			local getter, total = Multipart.stream(parts, boundary)
			return getter, total
		end,
	}
end

function BridgeClient:buildOperationRequest(op, params, image, fileName, output)
	return self:multipartRequest(self.url .. '/v1/ops/' .. urlEncode(op) .. outputQuery(output), {
		{ name = 'params', value = JSON.encode(params or {}), contentType = 'application/json' },
		imagePart(image, fileName),
	})
end

-- POST /v1/recipes/run: the recipe's text as it is in the file (TOML or JSON), then the image.
function BridgeClient:buildRecipeRequest(recipeText, image, fileName)
	return self:multipartRequest(self.url .. '/v1/recipes/run', {
		{ name = 'recipe', value = recipeText, contentType = 'text/plain; charset=utf-8' },
		imagePart(image, fileName),
	})
end

-- Problems -------------------------------------------------------------------

local NETWORK_DOWN = { cannotConnectToHost = true, cannotFindHost = true, badURL = true,
	resourceUnavailable = true }

local function networkProblem(hdrs)
	local err = (hdrs and hdrs.error) or {}
	local code = err.errorCode or 'unknown'
	if code == 'timedOut' then return { kind = 'timeout', code = code, message = err.name } end
	if code == 'cancelled' then return { kind = 'cancelled', code = code, message = err.name } end
	if NETWORK_DOWN[code] then return { kind = 'unreachable', code = code, message = err.name } end
	return { kind = 'network', code = code, message = err.name }
end

local function httpProblem(status, body)
	local problem = { kind = 'http', status = status }
	local decoded = body and body ~= '' and JSON.decode(body)
	if type(decoded) == 'table' and type(decoded.error) == 'table' then
		local e = decoded.error
		problem.code = type(e.code) == 'string' and e.code or nil
		problem.message = type(e.message) == 'string' and e.message or nil
		problem.details = type(e.details) == 'table' and e.details or nil
	else
		-- Not our JSON: a proxy, another program on the port, or a crash before the handler.
		problem.unexpected = true
		problem.message = body and body:sub(1, 200) or nil
	end
	return problem
end

-- A failed job's error (the same JSON object an HTTP error carries) as a problem, with the
-- status the bridge gives that code over HTTP, so describe() treats both alike.
local STATUS_OF_CODE = { invalid_input = 400, invalid_params = 400, unknown_operation = 404,
	not_found = 404, model_missing = 409, cancelled = 409, too_large = 413, unsupported_format = 415 }

local function jobProblem(err)
	if type(err) ~= 'table' then err = {} end
	local code = type(err.code) == 'string' and err.code or 'internal_error'
	return { kind = 'http', status = STATUS_OF_CODE[code] or 500, code = code,
		message = type(err.message) == 'string' and err.message or 'the job failed',
		details = type(err.details) == 'table' and err.details or nil }
end

-- Identity ---------------------------------------------------------------------

BridgeClient.CHALLENGE_TIMEOUT = 30   -- seconds: health answers at once even while a job runs

-- The port the bridge URL connects to (the scheme's default when it names none): the one
-- the identity proof must name, and the one messages show.
function BridgeClient:port()
	local scheme, rest = self.url:match('^(%a[%w+.-]*)://(.*)$')
	local authority = (rest or self.url):match('^[^/?#]*')
	return authority:match(':(%d+)$') or (scheme and scheme:lower() == 'https' and '443' or '80')
end

local function impostor(reason)
	return { kind = 'impostor', message = reason }
end

-- Asks GET /v1/health?challenge=<fresh nonce> without the token and checks the proof.
-- Returns the health answer, or nil and a problem: impostor, noToken, the bridge's own
-- bad_host/bad_origin refusal, or a network problem.
function BridgeClient:verifyIdentity()
	self.verified = false
	if self.token == '' then return nil, { kind = 'noToken' } end
	local nonce = Identity.newNonce()
	local body, hdrs = LrHttp.get(self.url .. '/v1/health?challenge=' .. nonce,
		headerList { Accept = 'application/json' }, math.min(self.timeout, BridgeClient.CHALLENGE_TIMEOUT))
	if body == nil then return nil, networkProblem(hdrs) end
	local status = tonumber(hdrs and hdrs.status)
	if status ~= 200 then
		local problem = httpProblem(status, body)
		-- Refusals that come before any route, telling the user what to change.
		if problem.code == 'bad_host' or problem.code == 'bad_origin' then return nil, problem end
		return nil, impostor('it answered HTTP ' .. tostring(status) .. ' to the identity challenge')
	end
	local decoded = JSON.decode(body)
	local proof = type(decoded) == 'table' and decoded.proof or nil
	if proof == nil then return nil, impostor('it gave no identity proof') end
	-- The port we connect to, from our own URL: a relay to a bridge elsewhere fails here.
	if not Identity.matches(self.token, self:port(), nonce, proof) then
		return nil, impostor('its identity proof does not match this token and port')
	end
	self.verified = true
	return decoded
end

-- One request with the bridge's retry rule: 429 queue_full waits Retry-After and tries again.
-- makeBody (POST only) returns a fresh byte getter and its size for each attempt.
-- A request with the token or a body goes only to a server that proved its identity;
-- `fresh` (pixel uploads) asks it to prove it again first.
function BridgeClient:send(method, url, headers, makeBody, fresh)
	local guarded = headers.Authorization ~= nil or method ~= 'GET'
	local attempt = 0
	while true do
		attempt = attempt + 1
		if guarded and (fresh or not self.verified) then
			local ok, problem = self:verifyIdentity()
			if not ok then return nil, problem end
		end
		local result, hdrs
		if method == 'GET' then
			result, hdrs = LrHttp.get(url, headerList(headers), self.timeout)
		else
			local ok, getter, total = pcall(makeBody)
			if not ok then return nil, { kind = 'file', message = tostring(getter) } end
			result, hdrs = LrHttp.post(url, getter, headerList(headers), method, self.timeout, total)
		end
		if result == nil then
			-- Whatever answers next on this port may not be the bridge that answered before.
			self.verified = false
			return nil, networkProblem(hdrs)
		end
		local status = tonumber(hdrs and hdrs.status)
		local map = responseHeaders(hdrs)
		if status and status >= 200 and status < 300 then
			return result, { status = status, headers = map }
		end
		if status == 429 and attempt <= self.maxRetries then
			local wait = tonumber(map['retry-after']) or 2
			self.sleep(math.max(0.1, math.min(wait, 30)))
		else
			local problem = httpProblem(status, result)
			problem.headers = map
			if not status then problem.kind = 'network'; problem.code = 'badServerResponse' end
			return nil, problem
		end
	end
end

function BridgeClient:getJson(path, authenticated)
	local headers = authenticated == false and { Accept = 'application/json' } or self:authHeaders()
	local body, info = self:send('GET', self.url .. path, headers)
	if not body then return nil, info end
	local decoded, err = JSON.decode(body)
	if decoded == nil then
		return nil, { kind = 'badJson', status = info.status, message = err }
	end
	return decoded, info
end

function BridgeClient:health()
	return self:getJson('/v1/health', false)
end

function BridgeClient:capabilities()
	return self:getJson('/v1/capabilities')
end

-- An image answer: the bytes, or a problem when there are none.
local function imageAnswer(body, info)
	if not body then return nil, info end
	if body == '' then
		return nil, { kind = 'http', status = info.status, unexpected = true,
			message = 'the bridge answered with an empty image' }
	end
	return body, info
end

function BridgeClient:runOperation(op, params, imageBytes, fileName, output)
	local req = self:buildOperationRequest(op, params, imageBytes, fileName, output)
	return imageAnswer(self:send('POST', req.url, req.headers, req.body, true))
end

BridgeClient.POLL_FIRST, BridgeClient.POLL_MAX = 0.1, 1   -- seconds between job status checks

-- Asks the bridge to drop a job nobody will read (cancel, timeout). Best effort.
function BridgeClient:cancelJob(id)
	return self:send('DELETE', self.url .. '/v1/jobs/' .. urlEncode(id), self:authHeaders(),
		function() return '' end)
end

function BridgeClient:runRecipe(recipeText, image, fileName, output, options)
	options = options or {}
	local req = self:buildRecipeRequest(recipeText, image, fileName)
	local body, info = self:send('POST', req.url, req.headers, req.body, true)
	if not body then
		-- Only this answer means the bridge refused the recipe before any work: errors from a
		-- running job name their step too, but concern that one photo.
		if type(info) == 'table' and type(info.details) == 'table' and info.details.step then
			info.refused = true
		end
		return nil, info
	end
	local job = JSON.decode(body)
	if type(job) ~= 'table' or type(job.id) ~= 'string' then
		return nil, { kind = 'badJson', status = info.status, message = 'no job id in the answer to the recipe' }
	end
	-- Wait for the job: short pauses first (small photos finish fast), then one a second.
	local waited, pause = 0, BridgeClient.POLL_FIRST
	local status = job
	while status.state ~= 'done' do
		if status.state == 'failed' then return nil, jobProblem(status.error) end
		if status.state == 'cancelled' then return nil, { kind = 'cancelled' } end
		if options.isCanceled and options.isCanceled() then
			self:cancelJob(job.id)
			return nil, { kind = 'cancelled' }
		end
		if waited >= self.timeout then
			self:cancelJob(job.id)
			return nil, { kind = 'timeout' }
		end
		self.sleep(pause)
		waited = waited + pause
		pause = math.min(pause * 2, BridgeClient.POLL_MAX)
		local problem
		status, problem = self:getJson('/v1/jobs/' .. urlEncode(job.id))
		if not status then return nil, problem end
	end
	return imageAnswer(self:send('GET', self.url .. '/v1/jobs/' .. urlEncode(job.id) .. '/result' .. outputQuery(output),
		self:authHeaders()))
end

-- Checks that the bridge is there, proves its identity, speaks our protocol and accepts the
-- token, with two cheap calls (the identity challenge needs no token; the job list does).
-- Returns health or nil, problem.
function BridgeClient:checkAccess()
	local health, problem
	if self.token == '' then
		-- Nothing to prove the bridge against: say whether it runs, then ask for the token.
		health, problem = self:health()
		if not health then return nil, problem end
		return nil, { kind = 'noToken' }
	end
	health, problem = self:verifyIdentity()
	if not health then return nil, problem end
	if type(health) ~= 'table' or health.status ~= 'ok' then
		return nil, { kind = 'badJson', message = 'not a Retouch Bridge health answer' }
	end
	if tonumber(health.protocol) ~= BridgeClient.PROTOCOL then
		return nil, { kind = 'protocol', message = tostring(health.protocol) }
	end
	local jobs
	jobs, problem = self:getJson('/v1/jobs')
	if not jobs then return nil, problem end
	return health
end

-- For Plug-in Manager: checkAccess, then what the bridge offers. Returns a summary or nil, problem.
-- A bridge that cannot list its capabilities still counts as connected; the summary says why.
function BridgeClient:testConnection()
	local health, problem = self:checkAccess()
	if not health then return nil, problem end
	local summary = { version = health.version, protocol = health.protocol }
	local caps
	caps, problem = self:capabilities()
	if not caps then
		summary.capabilitiesProblem = self:describe(problem)
		return summary
	end
	local ops = {}
	if type(caps.operations) == 'table' then
		for key, value in pairs(caps.operations) do
			-- operations may be a list of { name = ... } or a map name -> schema
			local name = type(key) == 'string' and key or (type(value) == 'table' and value.name)
			if name then ops[#ops + 1] = name end
		end
	end
	table.sort(ops)
	summary.operations = ops
	local device = caps.device
	if type(device) == 'table' then device = device.name or device.type or device.kind end
	summary.device = device
	return summary
end

-- What the user should read ----------------------------------------------------
-- One sentence per line: translators and reviewers read each message whole.
-- luacheck: push no max line length

function BridgeClient:describe(problem)
	problem = problem or {}
	local url = self.url
	local kind = problem.kind
	if kind == 'unreachable' then
		return LOC("$$$/RetouchBridge/Err/Down=Retouch Bridge is not running at ^1. Start it (the tray app, or 'retouch-bridge serve' in a terminal), then try again.", url)
	elseif kind == 'timeout' then
		return LOC("$$$/RetouchBridge/Err/Timeout=Retouch Bridge did not answer within ^1 seconds. Large photos and model upscales take longer: raise the timeout in Plug-in Manager > Retouch Bridge, or see the bridge log.", self.timeout)
	elseif kind == 'cancelled' then
		return LOC "$$$/RetouchBridge/Err/Cancelled=Cancelled."
	elseif kind == 'protocol' then
		return LOC("$$$/RetouchBridge/Err/Protocol=The bridge at ^1 speaks protocol ^2; this plug-in needs protocol ^3. Update Retouch Bridge and this plug-in to the same version.", url, problem.message, BridgeClient.PROTOCOL)
	elseif kind == 'badJson' then
		return LOC("$$$/RetouchBridge/Err/BadJson=The bridge at ^1 sent an answer this plug-in cannot read (^2). Check that the URL points at Retouch Bridge, and see the bridge log.", url, tostring(problem.message))
	elseif kind == 'impostor' then
		return LOC("$$$/RetouchBridge/Err/Impostor=Something else is answering on port ^1 — not Retouch Bridge, or a bridge with another token. Check the token in Plug-in Manager > Retouch Bridge, or quit the other program. Nothing was sent to it.", self:port())
	elseif kind == 'noToken' then
		return LOC "$$$/RetouchBridge/Err/NoToken=No pairing token is set, so nothing was sent. Run 'retouch-bridge token' (or choose Copy pairing token in the tray menu), paste the token in Plug-in Manager > Retouch Bridge, and click Test connection."
	elseif kind == 'file' then
		return LOC("$$$/RetouchBridge/Err/File=The rendered photo could not be read: ^1", tostring(problem.message))
	elseif kind == 'network' then
		return LOC("$$$/RetouchBridge/Err/Network=The connection to Retouch Bridge at ^1 failed (^2). Check that the bridge is running, then try again; see the bridge log if it keeps failing.", url, tostring(problem.message or problem.code))
	end
	-- HTTP answers
	local status, code, message = problem.status, problem.code, problem.message
	local details = problem.details or {}
	if problem.refused and not problem.unexpected then
		-- A recipe step the bridge refused before starting: say which, in the bridge's own words.
		local reason = tostring(message or code or status):gsub('^step %d+ %b(): ', '')
		local hint = code == 'model_missing' and (' ' .. tostring(details.hint or "Install it with 'retouch-bridge models pull'.")) or ''
		return LOC("$$$/RetouchBridge/Err/RecipeStep=The recipe's step ^1 (^2) was refused: ^3.^4 Fix that step in the recipe file; nothing was changed.", tostring(details.step), tostring(details.op or '?'), (reason:gsub('%.$', '')), hint)
	end
	if problem.unexpected then
		return LOC("$$$/RetouchBridge/Err/Unexpected=The server at ^1 answered HTTP ^2 with something that is not Retouch Bridge's JSON. Check the bridge URL in Plug-in Manager, and see the bridge log.", url, tostring(status))
	elseif status == 401 or code == 'unauthorized' then
		return LOC("$$$/RetouchBridge/Err/Token=Retouch Bridge refused the pairing token. Re-pair: run 'retouch-bridge token' (or choose Copy pairing token in the tray menu), paste the token in Plug-in Manager > Retouch Bridge, and click Test connection.")
	elseif code == 'bad_host' or code == 'bad_origin' then
		return LOC("$$$/RetouchBridge/Err/Host=Retouch Bridge refused the request (^1). Use http://127.0.0.1:PORT as the bridge URL in Plug-in Manager.", tostring(message or code))
	elseif code == 'unknown_operation' then
		return LOC("$$$/RetouchBridge/Err/UnknownOp=This Retouch Bridge has no such operation (^1). Update Retouch Bridge, or untick that step in the AI Enhance settings.", tostring(message or code))
	elseif code == 'model_missing' then
		return LOC("$$$/RetouchBridge/Err/Model=The model ^1 is not installed in Retouch Bridge. ^2", tostring(details.model or '?'),
			tostring(details.hint or "Install it with 'retouch-bridge models pull', or pick another model."))
	elseif code == 'too_large' or status == 413 then
		return LOC("$$$/RetouchBridge/Err/TooLarge=The photo is too large for Retouch Bridge (^1). Export it smaller, or raise the bridge's size limits.", tostring(message or status))
	elseif code == 'unsupported_format' or status == 415 then
		return LOC("$$$/RetouchBridge/Err/Format=Retouch Bridge cannot read or write this file format (^1). Export as TIFF, JPEG or PNG.", tostring(message or status))
	elseif code == 'queue_full' or status == 429 then
		return LOC "$$$/RetouchBridge/Err/Busy=Retouch Bridge is busy with other jobs and kept refusing new work. Wait for them to finish, then try again."
	elseif status and status >= 400 and status < 500 then
		return LOC("$$$/RetouchBridge/Err/Rejected=Retouch Bridge rejected the request: ^1 (HTTP ^2, ^3).", tostring(message or 'no reason given'), tostring(status), tostring(code or '?'))
	end
	return LOC("$$$/RetouchBridge/Err/Server=Retouch Bridge ran into an error: ^1 (HTTP ^2). See the bridge log for the details (the tray app's Open log, or the bridge's logs folder).", tostring(message or 'no reason given'), tostring(status))
end
-- luacheck: pop

return BridgeClient
