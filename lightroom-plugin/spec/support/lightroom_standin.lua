--[[ The ONE stand-in for Lightroom Classic's host: `import`, `LOC`, `_PLUGIN`.

Everything the plugin touches in Lightroom is faked here, thinly, and nowhere else:
  LrHttp            real HTTP over LuaSocket (socket.http + ltn12), Lightroom's return shapes
  LrTasks           tasks are coroutines run by a small scheduler, as Lightroom runs them:
                    the calls that yield in Lightroom (LrHttp, waitForRender, LrTasks.sleep
                    and yield, withWriteAccessDo, photo metadata reads) coroutine.yield here
                    too, so a plain pcall around one fails the way it fails in Lightroom
                    ("attempt to yield across metamethod/C-call boundary"); LrTasks.pcall is
                    yield-safe. Calling one outside a task is an error, as in Lightroom.
  LrFileUtils, LrPathUtils   real files through lfs and os
  LrProgressScope, LrDialogs, LrPrefs, LrView, LrBinding, LrFunctionContext
  LrApplication     a fake catalog that records withWriteAccessDo and addPhoto
  LrExportSession   renders a photo by copying the fixture file registered for the
                    requested format, and records the export settings it was asked for
  Lr.filterContext  a fake export-filter context whose renditions record renditionIsDone;
                    its exportProgress scope stands for the export's cancel button

The state every spec inspects lives in the returned table `Lr` (Lr.reset() between specs).
]]

local http = require 'socket.http'
local ltn12 = require 'ltn12'
local socket = require 'socket'
local lfs = require 'lfs'

local Lr = {}

local PLUGIN_DIR = (os.getenv('RB_PLUGIN_DIR') or 'RetouchBridge.lrplugin')

-- Recorded state -------------------------------------------------------------

function Lr.reset()
	Lr.requests = {}          -- every LrHttp call: { method, url, headers (lower-case map), body, timeout }
	Lr.intercept = nil        -- function(request) -> body, headers: answer without the network (nil: go on)
	Lr.onRequest = nil        -- function(request): runs before each request goes out
	Lr.messages = {}          -- LrDialogs.message / showError calls
	Lr.modalAnswer = 'ok'     -- what presentModalDialog answers
	Lr.modalDialogs = {}
	Lr.progressScopes = {}
	Lr.prefs = {}
	Lr.tasks = 0
	Lr.openPanelAnswer = nil  -- what LrDialogs.runOpenPanel answers: a list of paths, or nil (Cancel)
	Lr.openPanels = {}
	Lr.resetTasks()
	Lr.sessions = {}          -- every LrExportSession created
	Lr.catalog = Lr.newCatalog()
end

-- Tasks: coroutines and a scheduler ------------------------------------------------

local function pack(...) return { n = select('#', ...), ... } end

local TASK_YIELD = setmetatable({}, { __tostring = function() return 'a Lightroom task yield' end })
local ready = {}   -- tasks waiting for their turn: { co = coroutine, name = string }
local current      -- the task running now; nil on Lightroom's main thread

function Lr.resetTasks() ready, current = {}, nil end

-- What every yielding call in Lightroom does: give the other tasks a turn. A plain pcall
-- between the task and this call makes coroutine.yield raise, as in Lightroom.
local function hostYield(what)
	if current == nil then
		error(what .. ' can only be called from within an asynchronous task (LrTasks.startAsyncTask)', 3)
	end
	local answer = coroutine.yield(TASK_YIELD)
	assert(answer == TASK_YIELD, 'a task was resumed by something other than the task scheduler')
end

-- Calls that yield in Lightroom when they run in a task, and are fine outside one.
local function yieldIfInTask()
	if current ~= nil then coroutine.yield(TASK_YIELD) end
end

-- Runs every ready task in turn until none is left (Lightroom's main loop, for the specs).
local function runTasks()
	while #ready > 0 do
		local task = table.remove(ready, 1)
		current = task
		local result = pack(coroutine.resume(task.co, TASK_YIELD))
		current = nil
		if not result[1] then
			ready = {}
			local err = result[2]
			if type(err) == 'string' then err = debug.traceback(task.co, err) end
			error(err, 0)
		end
		if coroutine.status(task.co) ~= 'dead' then
			assert(result[2] == TASK_YIELD, 'task ' .. tostring(task.name) .. ' yielded ' .. tostring(result[2])
				.. ' outside Lightroom\'s own calls')
			ready[#ready + 1] = task
		end
	end
end

local function startTask(fn, name)
	Lr.tasks = Lr.tasks + 1
	ready[#ready + 1] = { co = coroutine.create(function(first)
		assert(first == TASK_YIELD)
		return fn()
	end), name = name }
	-- From the main thread (a spec, a button action) the scheduler runs until every task has
	-- ended, so the spec sees the outcome; from inside a task the new one waits its turn.
	if current == nil then runTasks() end
end

-- Runs fn(...) as an async task to its end and returns what it returned (raising its error).
function Lr.runTask(fn, ...)
	assert(current == nil, 'Lr.runTask is for specs, on the main thread')
	local args, results = pack(...), nil
	startTask(function() results = pack(fn(unpack(args, 1, args.n))) end, 'Lr.runTask')
	return unpack(results, 1, results.n)
end

-- `it('...', Lr.task(function() ... end))`: the spec body runs as an async task, as the
-- plug-in's code runs in Lightroom. `local it = Lr.inTasks(it)` does it for a whole file.
function Lr.task(fn)
	return function(...) return Lr.runTask(fn, ...) end
end

function Lr.inTasks(it)
	return function(name, fn) return it(name, Lr.task(fn)) end
end

-- LrTasks.pcall: a pcall that lets the function yield to the task scheduler (Lua 5.1's pcall
-- cannot). The function runs in a coroutine of its own; its yields are passed outward.
local function yieldSafePcall(fn, ...)
	local args = pack(...)
	local co = coroutine.create(function() return fn(unpack(args, 1, args.n)) end)
	local resumeWith = pack()
	while true do
		local result = pack(coroutine.resume(co, unpack(resumeWith, 1, resumeWith.n)))
		if not result[1] then return false, result[2] end
		if coroutine.status(co) == 'dead' then return true, unpack(result, 2, result.n) end
		resumeWith = pack(coroutine.yield(unpack(result, 2, result.n)))
	end
end

-- Paths and files --------------------------------------------------------------

local LrPathUtils = {}

function LrPathUtils.child(dir, name)
	if dir:sub(-1) == '/' then return dir .. name end
	return dir .. '/' .. name
end

function LrPathUtils.parent(path)
	local parent = path:match('^(.*)/[^/]+/?$')
	if parent == '' then return '/' end
	return parent
end

function LrPathUtils.leafName(path)
	return path:match('([^/]+)/?$')
end

function LrPathUtils.extension(path)
	return LrPathUtils.leafName(path):match('%.([^.]+)$') or ''
end

function LrPathUtils.removeExtension(path)
	local leaf = LrPathUtils.leafName(path)
	local stem = leaf:match('^(.+)%.[^.]+$')
	if not stem then return path end
	return path:sub(1, #path - #leaf) .. stem
end

function LrPathUtils.addExtension(path, ext)
	return path .. '.' .. ext
end

function LrPathUtils.replaceExtension(path, ext)
	return LrPathUtils.removeExtension(path) .. '.' .. ext
end

function LrPathUtils.standardizePath(path)
	return (path:gsub('/+', '/'))
end

function LrPathUtils.getStandardFilePath(which)
	assert(which == 'temp', 'stand-in only knows the temp folder')
	return os.getenv('RB_SPEC_TMP') or os.getenv('TMPDIR') or '/tmp'
end

local LrFileUtils = {}
local rename, remove = os.rename, os.remove -- kept: specs may hide os.rename from the plug-in

function LrFileUtils.exists(path)
	local mode = lfs.attributes(path, 'mode')
	if mode == 'directory' then return 'directory' end
	if mode then return 'file' end
	return false
end

function LrFileUtils.delete(path)
	if lfs.attributes(path, 'mode') == 'directory' then
		for name in lfs.dir(path) do
			if name ~= '.' and name ~= '..' then LrFileUtils.delete(path .. '/' .. name) end
		end
		local ok, err = lfs.rmdir(path)
		return ok and true or false, err
	end
	local ok, err = remove(path)
	return ok and true or false, err
end

function LrFileUtils.move(from, to)
	-- Like Lightroom, refuses to replace an existing file.
	if LrFileUtils.exists(to) then return false, to .. ' already exists' end
	local ok, err = rename(from, to)
	return ok and true or false, err
end

function LrFileUtils.copy(from, to)
	if LrFileUtils.exists(to) then return false end
	local input = assert(io.open(from, 'rb'))
	local data = input:read('*a')
	input:close()
	local output = assert(io.open(to, 'wb'))
	output:write(data)
	output:close()
	return true
end

function LrFileUtils.createAllDirectories(path)
	local built = path:sub(1, 1) == '/' and '' or '.'
	for part in path:gmatch('[^/]+') do
		built = built .. '/' .. part
		if not lfs.attributes(built) then lfs.mkdir(built) end
	end
	return lfs.attributes(path, 'mode') == 'directory'
end

function LrFileUtils.createDirectory(path)
	return lfs.mkdir(path) and true or false
end

function LrFileUtils.fileAttributes(path)
	local size = lfs.attributes(path, 'size')
	return { fileSize = size }
end

function LrFileUtils.readFile(path)
	local f = assert(io.open(path, 'rb'))
	local data = f:read('*a')
	f:close()
	return data
end

function LrFileUtils.isWritable(path)
	local probe = io.open(LrPathUtils.child(path, '.rb-writable-probe'), 'wb')
	if not probe then return false end
	probe:close()
	os.remove(LrPathUtils.child(path, '.rb-writable-probe'))
	return true
end

function LrFileUtils.chooseUniqueFileName(path)
	if not LrFileUtils.exists(path) then return path end
	local stem, ext = LrPathUtils.removeExtension(path), LrPathUtils.extension(path)
	local i = 2
	while true do
		local candidate = stem .. '-' .. i .. (ext ~= '' and ('.' .. ext) or '')
		if not LrFileUtils.exists(candidate) then return candidate end
		i = i + 1
	end
end

function LrFileUtils.files(dir)
	local names = {}
	for name in lfs.dir(dir) do
		local full = dir .. '/' .. name
		if name ~= '.' and name ~= '..' and lfs.attributes(full, 'mode') == 'file' then
			names[#names + 1] = full
		end
	end
	table.sort(names)
	local i = 0
	return function() i = i + 1; return names[i] end
end

-- HTTP: the real thing over LuaSocket, in LrHttp's shapes -------------------------

local LrHttp = {}

local function headerMap(list)
	local map = {}
	for _, h in ipairs(list or {}) do map[h.field:lower()] = h.value end
	return map
end

-- LuaSocket's error strings mapped to the errorCode values LrHttp documents.
local function lrError(message)
	local code = 'networkConnectionLost'
	if message == 'connection refused' then code = 'cannotConnectToHost'
	elseif message == 'timeout' then code = 'timedOut'
	elseif message:find('host or service not provided') or message:find('not known') then
		code = 'cannotFindHost'
	end
	return nil, { error = { errorCode = code, name = message, nativeCode = 0 } }
end

local function request(method, url, body, headers, timeout)
	hostYield('LrHttp.' .. (method == 'GET' and 'get' or 'post'))
	local req = { method = method, url = url, headers = headerMap(headers), body = body, timeout = timeout }
	Lr.requests[#Lr.requests + 1] = req
	if Lr.onRequest then Lr.onRequest(req) end
	if Lr.intercept then
		local answer, answerHeaders = Lr.intercept(req)
		if answer ~= nil or answerHeaders ~= nil then return answer, answerHeaders end
	end
	local sendHeaders = {}
	for k, v in pairs(req.headers) do sendHeaders[k] = v end
	if body then sendHeaders['content-length'] = tostring(#body) end
	local chunks = {}
	-- socket.http applies its module-wide TIMEOUT to every socket it opens.
	local savedTimeout = http.TIMEOUT
	http.TIMEOUT = timeout or 60
	local ok, status, responseHeaders = http.request {
		url = url,
		method = method,
		headers = sendHeaders,
		source = body and ltn12.source.string(body) or nil,
		sink = ltn12.sink.table(chunks),
	}
	http.TIMEOUT = savedTimeout
	if not ok then return lrError(tostring(status)) end
	req.status = status
	local out = { status = status }
	for field, value in pairs(responseHeaders or {}) do
		out[#out + 1] = { field = field, value = value }
	end
	return table.concat(chunks), out
end

-- postBody is a string, or (Lightroom 4.1+) a byte getter called until it returns nil,
-- with totalSize announcing its length. The stand-in drains the getter (the specs read
-- what was sent) and checks that the length matches what was announced.
function LrHttp.post(url, postBody, headers, method, timeout, totalSize)
	if type(postBody) == 'function' then
		assert(type(totalSize) == 'number', 'LrHttp.post needs totalSize with a byte getter')
		local chunks = {}
		for chunk in postBody do
			assert(type(chunk) == 'string', 'a byte getter must return strings, then nil')
			chunks[#chunks + 1] = chunk
		end
		postBody = table.concat(chunks)
		assert(#postBody == totalSize, string.format('totalSize %d but the getter gave %d bytes', totalSize, #postBody))
	else
		assert(type(postBody) == 'string', 'LrHttp.post takes a string or a byte getter')
		assert(totalSize == nil or totalSize == #postBody, 'totalSize must match the body')
	end
	return request(method or 'POST', url, postBody, headers, timeout)
end

function LrHttp.get(url, headers, timeout)
	return request('GET', url, nil, headers, timeout)
end

-- Tasks, contexts, progress, dialogs ----------------------------------------------

local LrTasks = {}

function LrTasks.startAsyncTask(fn, name) startTask(fn, name) end

function LrTasks.sleep(seconds)
	hostYield('LrTasks.sleep')
	socket.sleep(seconds)
end
function LrTasks.yield() hostYield('LrTasks.yield') end
function LrTasks.canYield() return current ~= nil end
LrTasks.pcall = yieldSafePcall

local LrFunctionContext = {}

local function newContext()
	local context = { cleanup = {}, failure = {} }
	function context:addCleanupHandler(fn) self.cleanup[#self.cleanup + 1] = fn end
	function context:addFailureHandler(fn) self.failure[#self.failure + 1] = fn end
	function context:addOperationTitleForError(title) self.title = title end
	return context
end

function LrFunctionContext.callWithContext(_, fn, ...)
	local context = newContext()
	local results = pack(yieldSafePcall(fn, context, ...))
	local ok = results[1]
	if not ok then
		for _, handler in ipairs(context.failure) do handler(false, results[2]) end
	end
	for _, handler in ipairs(context.cleanup) do handler(ok, results[2]) end
	if not ok then error(results[2], 0) end
	return unpack(results, 2, results.n)
end

function LrFunctionContext.postAsyncTaskWithContext(name, fn)
	startTask(function() LrFunctionContext.callWithContext(name, fn) end, name)
end

local ProgressScope = {}
ProgressScope.__index = ProgressScope

local function LrProgressScope(args)
	local scope = setmetatable({ title = args.title, captions = {}, portions = {},
		canceled = false, finished = false }, ProgressScope)
	if args.functionContext then
		args.functionContext:addCleanupHandler(function() scope:done() end)
	end
	Lr.progressScopes[#Lr.progressScopes + 1] = scope
	return scope
end

function ProgressScope:setCaption(text) self.captions[#self.captions + 1] = text end
function ProgressScope:setPortionComplete(done, total)
	self.portions[#self.portions + 1] = { done, total }
end
function ProgressScope:setCancelable(flag) self.cancelable = flag end
function ProgressScope:isCanceled() return self.canceled end
function ProgressScope:cancel() self.canceled = true end
function ProgressScope:done() self.finished = true end
function ProgressScope:isDone() return self.finished end

local LrDialogs = {}

function LrDialogs.message(title, message, style)
	Lr.messages[#Lr.messages + 1] = { title = title, message = message, style = style }
end

function LrDialogs.showError(err)
	Lr.messages[#Lr.messages + 1] = { title = 'error', message = tostring(err), style = 'critical' }
end

function LrDialogs.presentModalDialog(args)
	Lr.modalDialogs[#Lr.modalDialogs + 1] = args
	return Lr.modalAnswer
end

-- Records what was asked; answers Lr.openPanelAnswer (a list of paths, or nil for Cancel).
function LrDialogs.runOpenPanel(args)
	Lr.openPanels[#Lr.openPanels + 1] = args
	return Lr.openPanelAnswer
end

function LrDialogs.attachErrorDialogToFunctionContext() end

local LrPrefs = {}
function LrPrefs.prefsForPlugin() return Lr.prefs end

-- Views: the plugin builds them, specs only look at what was built.
local LrView = {}

function LrView.osFactory()
	return setmetatable({}, { __index = function(_, kind)
		return function(_, args)
			local view = { kind = kind }
			for k, v in pairs(args or {}) do view[k] = v end
			return view
		end
	end })
end

function LrView.bind(spec)
	if type(spec) == 'string' then return { bind = spec } end
	return { bind = spec.key, transform = spec.transform, bind_to_object = spec.bind_to_object }
end

function LrView.share(name) return { share = name } end

local LrBinding = {}

function LrBinding.makePropertyTable()
	local observers = {}
	local props = {}
	return setmetatable({}, {
		__index = function(_, k)
			if k == 'addObserver' then
				return function(_, key, fn) observers[key] = observers[key] or {}; table.insert(observers[key], fn) end
			end
			return props[k]
		end,
		__newindex = function(self, k, v)
			props[k] = v
			for _, fn in ipairs(observers[k] or {}) do fn(self, k, v) end
		end,
	})
end

function LrBinding.keyEquals(key, value) return { keyEquals = key, value = value } end
function LrBinding.negativeOfKey(key) return { negativeOfKey = key } end

-- Catalog and photos ---------------------------------------------------------

local Photo = {}
Photo.__index = Photo

--[[ Lr.newPhoto{ path = original file, fileFormat = 'RAW'|'JPG'|'TIFF'|...,
                 renders = { TIFF16 = fixture, JPEG = fixture, ... } }
`renders` stands in for Lightroom's raw engine: what a render in that format produces. ]]
function Lr.newPhoto(args)
	local photo = setmetatable({}, Photo)
	for k, v in pairs(args) do photo[k] = v end
	photo.fileFormat = photo.fileFormat or 'TIFF'
	photo.renders = photo.renders or {}
	return photo
end

-- Catalog metadata the user typed lives in photo.metadata (IPTC text, rating, label, ...)
-- and photo.keywords; Lightroom refuses changes outside withWriteAccessDo.
function Photo:getRawMetadata(key)
	yieldIfInTask()
	if key == 'path' then return self.path end
	if key == 'fileFormat' then return self.fileFormat end
	if key == 'isVirtualCopy' then return self.isVirtualCopy or false end
	if key == 'uuid' then return self.uuid or self.path end
	if key == 'keywords' then return self.keywords or {} end
	return (self.metadata or {})[key]
end

function Photo:getFormattedMetadata(key)
	yieldIfInTask()
	if key == 'fileName' then return LrPathUtils.leafName(self.path) end
	if key == 'copyName' then return self.copyName end
	return (self.metadata or {})[key]
end

function Photo:setRawMetadata(key, value)
	assert(Lr.catalog.inWrite, 'setRawMetadata called outside catalog:withWriteAccessDo')
	self.metadata = self.metadata or {}
	self.metadata[key] = value
end

function Photo:addKeyword(keyword)
	assert(Lr.catalog.inWrite, 'addKeyword called outside catalog:withWriteAccessDo')
	self.keywords = self.keywords or {}
	table.insert(self.keywords, keyword)
end

function Lr.newCatalog()
	local catalog = { photos = {}, targetPhotos = {}, writes = {}, added = {}, inWrite = false }

	function catalog:getTargetPhotos() return self.targetPhotos end
	function catalog:getTargetPhoto() return self.targetPhotos[1] end

	function catalog:withWriteAccessDo(actionName, fn, timeoutParams)
		assert(not self.inWrite, 'nested withWriteAccessDo')
		-- Lightroom waits here for the catalog's write lock: the task yields.
		hostYield('catalog:withWriteAccessDo')
		self.writes[#self.writes + 1] = { actionName = actionName, timeoutParams = timeoutParams }
		self.inWrite = true
		local ok, err = yieldSafePcall(fn, {})
		self.inWrite = false
		if not ok then error(err, 0) end
		return 'executed'
	end

	-- Lightroom refuses catalog changes outside withWriteAccessDo and files that are not there.
	function catalog:addPhoto(path, stackWithPhoto, position)
		assert(self.inWrite, 'addPhoto called outside catalog:withWriteAccessDo')
		assert(LrFileUtils.exists(path) == 'file', 'addPhoto: no file at ' .. tostring(path))
		assert(position == nil or position == 'above' or position == 'below', 'bad stack position')
		for _, p in ipairs(self.photos) do
			assert(p.path ~= path, 'addPhoto: already in the catalog: ' .. path)
		end
		local photo = Lr.newPhoto { path = path, fileFormat = LrPathUtils.extension(path):upper() }
		self.photos[#self.photos + 1] = photo
		self.added[#self.added + 1] = { path = path, stackWith = stackWithPhoto, position = position, photo = photo }
		return photo
	end

	return catalog
end

local LrApplication = {}
function LrApplication.activeCatalog() return Lr.catalog end

-- Export sessions and renditions ---------------------------------------------

local EXTENSIONS = { TIFF = 'tif', JPEG = 'jpg', PNG = 'png', PSD = 'psd', DNG = 'dng' }

local function renderKey(settings)
	local key = settings.LR_format
	if key == 'TIFF' and tonumber(settings.LR_export_bitDepth) == 16 then key = 'TIFF16' end
	return key
end

local Rendition = {}
Rendition.__index = Rendition

function Rendition:waitForRender()
	hostYield('LrExportRendition:waitForRender')
	if self.rendered ~= nil then return self.rendered, self.renderResult end
	local photo = self.photo
	if photo.renderFails then
		self.rendered, self.renderResult = false, photo.renderFails
		return false, photo.renderFails
	end
	local key = renderKey(self.settings)
	local source = photo.renders[key]
	assert(source, 'stand-in photo ' .. tostring(photo.path) .. ' has no render for ' .. tostring(key))
	LrFileUtils.createAllDirectories(LrPathUtils.parent(self.destinationPath))
	assert(LrFileUtils.copy(source, self.destinationPath), 'render target exists: ' .. self.destinationPath)
	self.rendered, self.renderResult = true, self.destinationPath
	self.renderedAs = key
	return true, self.destinationPath
end

function Rendition:renditionIsDone(success, message)
	assert(self.done == nil, 'renditionIsDone called twice')
	self.done = { success = success, message = message }
end

function Rendition:skipRender() self.rendered = false; self.renderResult = 'skipped' end

local function copySettings(settings)
	local copy = {}
	for k, v in pairs(settings) do copy[k] = v end
	return copy
end

local function newRendition(photo, settings, destinationPath)
	return setmetatable({ photo = photo, settings = settings, destinationPath = destinationPath }, Rendition)
end

local function destinationFor(photo, settings)
	local dir = settings.LR_export_destinationPathPrefix
	assert(settings.LR_export_destinationType == 'specificFolder' and dir,
		'stand-in export sessions write to a specific folder')
	if settings.LR_export_useSubfolder then dir = LrPathUtils.child(dir, settings.LR_export_destinationPathSuffix) end
	local ext = EXTENSIONS[settings.LR_format] or LrPathUtils.extension(photo.path)
	local path = LrPathUtils.child(dir, LrPathUtils.leafName(LrPathUtils.removeExtension(photo.path)) .. '.' .. ext)
	if settings.LR_collisionHandling == 'rename' then path = LrFileUtils.chooseUniqueFileName(path) end
	return path
end

local function LrExportSession(params)
	assert(params.photosToExport and params.exportSettings, 'LrExportSession needs photosToExport and exportSettings')
	local session = { photosToExport = params.photosToExport, exportSettings = copySettings(params.exportSettings) }
	Lr.sessions[#Lr.sessions + 1] = session

	function session:countRenditions() return #self.photosToExport end

	function session:renditions(args)
		args = args or {}
		local i = 0
		self.list = {}
		return function()
			if args.stopIfCanceled and args.progressScope and args.progressScope:isCanceled() then return nil end
			i = i + 1
			local photo = self.photosToExport[i]
			if not photo then return nil end
			local rendition = newRendition(photo, self.exportSettings, destinationFor(photo, self.exportSettings))
			self.list[i] = rendition
			return i, rendition
		end
	end

	function session:doExportOnCurrentTask()
		for _, rendition in self:renditions() do rendition:waitForRender() end
	end

	return session
end

--[[ Lr.filterContext{ propertyTable = export settings incl. the filter's own fields,
                      photos = { ... }, destinationDir = folder } ]]
function Lr.filterContext(args)
	local settings = copySettings(args.propertyTable)
	local toSatisfy = {}
	for i, photo in ipairs(args.photos) do
		local ext = EXTENSIONS[settings.LR_format]
		local path = LrPathUtils.child(args.destinationDir,
			LrPathUtils.leafName(LrPathUtils.removeExtension(photo.path)) .. '.' .. ext)
		toSatisfy[i] = newRendition(photo, settings, path)
	end
	-- exportProgress: the export's own progress scope; a spec cancels it as the user would.
	local context = { propertyTable = args.propertyTable, renditionsToSatisfy = toSatisfy, sources = {},
		exportProgress = LrProgressScope { title = 'Exporting ' .. #toSatisfy .. ' photos' } }

	function context:renditions(params)
		params = params or {}
		local i = 0
		return function()
			if params.stopIfCanceled and self.exportProgress:isCanceled() then return nil end
			i = i + 1
			local target = toSatisfy[i]
			if not target then return nil end
			local sourceSettings = copySettings(settings)
			local path = target.destinationPath
			if params.filterSettings then
				path = params.filterSettings(target, sourceSettings) or path
			end
			local source = newRendition(target.photo, sourceSettings, path)
			self.sources[i] = source
			return source, target
		end
	end

	return context
end

-- Installation -----------------------------------------------------------------

local namespaces = {
	LrHttp = LrHttp, LrTasks = LrTasks, LrFileUtils = LrFileUtils, LrPathUtils = LrPathUtils,
	LrProgressScope = LrProgressScope, LrDialogs = LrDialogs, LrPrefs = LrPrefs, LrView = LrView,
	LrBinding = LrBinding, LrFunctionContext = LrFunctionContext, LrApplication = LrApplication,
	LrExportSession = LrExportSession,
}

function Lr.install()
	-- luacheck: globals import LOC _PLUGIN WIN_ENV MAC_ENV
	import = function(name)
		local ns = namespaces[name]
		assert(ns, 'the stand-in has no ' .. tostring(name) .. ': add it to spec/support/lightroom_standin.lua')
		return ns
	end
	-- LOC "$$$/Key=Text" gives Text, with ^1.. replaced by the extra arguments.
	LOC = function(s, ...)
		local text = s:match('^%$%$%$/[^=]*=(.*)$') or s
		local args = { ... }
		return (text:gsub('%^(%d)', function(n) return tostring(args[tonumber(n)]) end))
	end
	_PLUGIN = { id = 'com.retouchbridge.lightroom', path = PLUGIN_DIR, enabled = true }
	WIN_ENV, MAC_ENV = false, true
	package.path = PLUGIN_DIR .. '/?.lua;' .. package.path
	Lr.reset()
end

-- Loads a plugin file the way Lightroom does for entry scripts (Info.lua, menu items).
function Lr.runPluginFile(name)
	local chunk = assert(loadfile(LrPathUtils.child(PLUGIN_DIR, name)))
	return chunk()
end

Lr.PLUGIN_DIR = PLUGIN_DIR
Lr.readFile = LrFileUtils.readFile

return Lr
