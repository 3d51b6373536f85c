--[[ The AI Enhance settings: their defaults, and how they become bridge calls.

Pure functions only (no Lightroom namespaces), so both the export filter and the
"Enhance selected photos" command share them and the specs can check them directly.

EnhanceSettings.plan(settings) -> { { op = 'denoise', params = {...}, label = '...' }, ... }
  in the order the user chose; one bridge call per step. With "Run a recipe file" on, the
  plan is that recipe alone: { { recipePath = '/path/shop.toml', label = 'Recipe shop.toml' } }
  (Enhancer.loadRecipes reads the file into step.recipeText before the first photo).
EnhanceSettings.outputFor(lrFormat, jpegQuality) -> { format = 'jpeg', quality = 92, extension = 'jpg' } | nil
EnhanceSettings.validate(settings, lrFormat) -> true | false, message
]]

local EnhanceSettings = {}

EnhanceSettings.UPSCALE_MODELS = {
	{ value = 'RealESRGAN_x4plus', title = 'Real-ESRGAN x4plus (photos)' },
	{ value = 'RealESRGAN_x2plus', title = 'Real-ESRGAN x2plus (photos, x2 native)' },
	{ value = 'realesr-general-x4v3', title = 'Real-ESRGAN general v3 (fast)' },
	{ value = 'realesr-animevideov3', title = 'Real-ESRGAN compact (illustration)' },
	{ value = 'lanczos', title = 'Lanczos (no AI, exact)' },
}

EnhanceSettings.FACE_MODELS = {
	{ value = 'GFPGANv1.4', title = 'GFPGAN 1.4' },
	{ value = 'RestoreFormer', title = 'RestoreFormer' },
	{ value = 'CodeFormer', title = 'CodeFormer (non-commercial licence)' },
}

-- Clean-up is one bridge operation (`denoise`) with two kinds of model.
EnhanceSettings.CLEANUP_MODES = {
	{ value = 'denoise', title = 'Denoise (SCUNet)', model = 'SCUNet' },
	{ value = 'jpeg', title = 'JPEG clean-up (FBCNN)', model = 'FBCNN' },
}

EnhanceSettings.BACKGROUND_MODES = {
	{ value = 'none', title = 'Keep background' },
	{ value = 'remove', title = 'Remove background (transparent)' },
	{ value = 'standardize', title = 'Standardise background (e-commerce)' },
}

-- Clean-up first: artefacts must not be enlarged; faces before the upscale so the
-- face model sees faces at the size it was trained on.
EnhanceSettings.ORDERS = {
	{ value = 'cleanup,faces,upscale,background', title = 'Clean-up, faces, upscale, background (recommended)' },
	{ value = 'cleanup,upscale,faces,background', title = 'Clean-up, upscale, faces, background' },
	{ value = 'faces,cleanup,upscale,background', title = 'Faces, clean-up, upscale, background' },
}

-- Export-preset fields (LrExportFilterProvider.exportPresetFields) and prefs keys.
EnhanceSettings.FIELDS = {
	{ key = 'rb_order', default = 'cleanup,faces,upscale,background' },
	{ key = 'rb_cleanup', default = false },
	{ key = 'rb_cleanupMode', default = 'denoise' },
	{ key = 'rb_cleanupStrength', default = 0.5 },
	{ key = 'rb_faces', default = false },
	{ key = 'rb_facesModel', default = 'GFPGANv1.4' },
	{ key = 'rb_facesFidelity', default = 0.5 },
	{ key = 'rb_upscale', default = true },
	{ key = 'rb_upscaleScale', default = 2 },
	{ key = 'rb_upscaleModel', default = 'RealESRGAN_x4plus' },
	{ key = 'rb_background', default = 'none' },
	{ key = 'rb_force16', default = true },
	-- A recipe file (docs/RECIPES.md) run instead of the steps above.
	{ key = 'rb_useRecipe', default = false },
	{ key = 'rb_recipePath', default = '' },
}

function EnhanceSettings.defaults()
	local t = {}
	for _, f in ipairs(EnhanceSettings.FIELDS) do t[f.key] = f.default end
	return t
end

-- Reads each field from `source` (a property table, prefs or a plain table), falling back to defaults.
function EnhanceSettings.read(source)
	local t = {}
	for _, f in ipairs(EnhanceSettings.FIELDS) do
		local v = source and source[f.key]
		if v == nil then v = f.default end
		t[f.key] = v
	end
	return t
end

function EnhanceSettings.copy(from, to)
	for _, f in ipairs(EnhanceSettings.FIELDS) do to[f.key] = from[f.key] end
	return to
end

local function clamp01(x, default)
	x = tonumber(x) or default
	if x < 0 then return 0 end
	if x > 1 then return 1 end
	-- Sliders give long binary fractions; two decimals is what the user chose.
	return math.floor(x * 100 + 0.5) / 100
end

local function find(list, value)
	for _, item in ipairs(list) do
		if item.value == value then return item end
	end
	return nil
end

local builders = {}

function builders.cleanup(s)
	if not s.rb_cleanup then return nil end
	local mode = find(EnhanceSettings.CLEANUP_MODES, s.rb_cleanupMode) or EnhanceSettings.CLEANUP_MODES[1]
	return { op = 'denoise', label = mode.title,
		params = { model = mode.model, strength = clamp01(s.rb_cleanupStrength, 0.5) } }
end

function builders.faces(s)
	if not s.rb_faces then return nil end
	return { op = 'restore-faces', label = 'Restore faces',
		params = { model = s.rb_facesModel, fidelity = clamp01(s.rb_facesFidelity, 0.5) } }
end

function builders.upscale(s)
	if not s.rb_upscale then return nil end
	local scale = tonumber(s.rb_upscaleScale) == 4 and 4 or 2
	return { op = 'upscale', label = 'Upscale x' .. scale,
		params = { scale = scale, model = s.rb_upscaleModel } }
end

function builders.background(s)
	if s.rb_background == 'remove' then
		return { op = 'remove-background', label = 'Remove background', params = {} }
	elseif s.rb_background == 'standardize' then
		return { op = 'standardize', label = 'Standardise background', params = {} }
	end
	return nil
end

local function recipePath(s)
	return (tostring(s.rb_recipePath or ''):gsub('^%s+', ''):gsub('%s+$', ''))
end

function EnhanceSettings.plan(settings)
	local s = EnhanceSettings.read(settings)
	if s.rb_useRecipe then
		local path = recipePath(s)
		if path == '' then return {} end
		return { { recipePath = path, label = 'Recipe ' .. (path:match('([^/\\]+)$') or path) } }
	end
	local steps, seen = {}, {}
	local order = tostring(s.rb_order)
	-- Any step the order string forgets still runs, in the recommended place.
	order = order .. ',' .. EnhanceSettings.FIELDS[1].default
	for name in order:gmatch('[^,%s]+') do
		if builders[name] and not seen[name] then
			seen[name] = true
			local step = builders[name](s)
			if step then steps[#steps + 1] = step end
		end
	end
	return steps
end

-- One line for the collapsed export section; lrFormat (optional) is the export's format.
function EnhanceSettings.synopsis(settings, lrFormat)
	local steps = EnhanceSettings.plan(settings)
	if #steps == 0 then
		if EnhanceSettings.read(settings).rb_useRecipe then return 'No recipe file chosen' end
		return 'No AI steps chosen'
	end
	local labels = {}
	for i, step in ipairs(steps) do labels[i] = step.label end
	local text = table.concat(labels, ' > ')
	if lrFormat == 'JPEG' and EnhanceSettings.read(settings).rb_force16 then text = text .. ' (16-bit render)' end
	return text
end

-- Lightroom's LR_format -> what we ask the bridge to encode.
local OUTPUTS = {
	JPEG = { format = 'jpeg', extension = 'jpg' },
	TIFF = { format = 'tiff', extension = 'tif' },
	PNG = { format = 'png', extension = 'png' },
}

function EnhanceSettings.outputFor(lrFormat, jpegQuality)
	local out = OUTPUTS[lrFormat]
	if not out then return nil end
	local result = { format = out.format, extension = out.extension }
	if out.format == 'jpeg' then
		local q = tonumber(jpegQuality) or 0.9
		-- Lightroom keeps JPEG quality as 0..1; accept a percentage too.
		if q <= 1 then q = q * 100 end
		result.quality = math.max(1, math.min(100, math.floor(q + 0.5)))
	end
	return result
end

function EnhanceSettings.validate(settings, lrFormat)
	local s = EnhanceSettings.read(settings)
	if not EnhanceSettings.outputFor(lrFormat) then
		return false, string.format("AI Enhance writes JPEG, TIFF or PNG; this export is set to %s. "
			.. "Choose JPEG, TIFF or PNG under File Settings.", tostring(lrFormat))
	end
	if s.rb_useRecipe then
		if recipePath(s) == '' then
			return false, "\"Run a recipe file\" is on but no recipe file is chosen. Choose one, or turn the option off."
		end
		return true
	end
	if s.rb_background == 'remove' and lrFormat == 'JPEG' then
		return false, "Background removal makes the background transparent, which JPEG cannot hold. "
			.. "Choose TIFF or PNG under File Settings, or use Standardise background."
	end
	return true
end

return EnhanceSettings
